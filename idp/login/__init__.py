"""Browser sessions: the login page, the partner picker, logout."""
