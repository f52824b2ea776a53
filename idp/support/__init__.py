"""Support tools: account search, email reassignment, account controls, legacy import."""
