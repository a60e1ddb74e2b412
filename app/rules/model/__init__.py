"""The rules model: what rule, catalog and context files *mean*.

YAML loading with line/column positions (yamlload), the product catalog
(catalog), rule sets and their rules (ruleset), the condition language
(conditions), the facts a request is judged on (facts), and the problems a
bad file is reported with (errors). Imports nothing else of app.rules.
"""
