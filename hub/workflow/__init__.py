"""Workflow on the interaction stream: automation rules, SLA, business hours, CSAT,
complaints, follow-up tasks and the first-line bot."""
