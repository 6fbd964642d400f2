"""The settings UI: server-rendered Jinja pages and a little plain JavaScript."""
