"""Google Calendar and Gmail: credentials, API clients and the sync services."""
