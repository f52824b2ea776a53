"""Who is calling: bearer access tokens for the /v1 API, turned into a policy Actor."""
