"""Two-step sign-in: an authenticator app's codes (TOTP) and single-use recovery codes."""
