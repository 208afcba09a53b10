"""The agent console's side of the hub: its read models and the actions only it uses."""
