"""Formatters: a rich summary for people; JSON, CSV and Markdown for machines."""
