"""The generic API channel: contacts posted as JSON by any system holding the API token."""
