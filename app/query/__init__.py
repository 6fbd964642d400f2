"""The query engine: every API question becomes SQL here, and only here."""
