"""Who is calling: passwords, API keys, JWTs, sign-in sessions, rate limits and usage."""
