"""Workflow: automation rules, SLA timers, CSAT, complaints, first-line bot."""
