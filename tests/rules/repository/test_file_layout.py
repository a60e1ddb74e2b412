"""The repository layout (rules/README.md, "Versions"): which files are rule
sets, where a rule set's cases, lock and kept versions live, and the change
signal the service reloads on."""
from __future__ import annotations

import json

from app.rules.repository.files import write_json_atomic
from app.rules.repository.layout import (cases_file_for, find_cases_files, is_cases_file, kept_version_path,
                                         lock_files, lock_path, pointer_path, rule_files, rules_dir_of,
                                         ruleset_file_for, stat_signature)


def tree(tmp_path):
    rules = tmp_path / "rules"
    (rules / "versions").mkdir(parents=True)
    for name in ("b.yaml", "a.yml", "a.cases.yaml", "a.lock.json", "notes.txt", "versions/a@0.9.0.yaml",
                 "versions/a.cases.yaml"):
        (rules / name).write_text("x: 1\n")
    (rules / "folder.yaml").mkdir()                  # a directory is never a rule file
    return rules


def test_rule_files_are_working_copies_first_then_kept_versions_and_never_cases(tmp_path):
    rules = tree(tmp_path)
    assert [p.relative_to(rules).as_posix() for p in rule_files(rules)] == ["a.yml", "b.yaml", "versions/a@0.9.0.yaml"]
    assert is_cases_file(rules / "a.cases.yaml") and not is_cases_file(rules / "a.yml")
    assert find_cases_files(rules) == [rules / "a.cases.yaml"]
    assert lock_files(rules) == [rules / "a.lock.json"]


def test_each_file_knows_its_neighbours(tmp_path):
    rules = tree(tmp_path)
    assert cases_file_for(rules / "a.yml") == rules / "a.cases.yaml"
    assert ruleset_file_for(rules / "a.cases.yaml") == rules / "a.yml"          # the .yml that exists
    assert ruleset_file_for(rules / "c.cases.yml") == rules / "c.yaml"          # none: the usual name
    assert rules_dir_of(rules / "versions" / "a@0.9.0.yaml") == rules == rules_dir_of(rules / "b.yaml")
    assert kept_version_path(rules, "a", "1.0.0") == rules / "versions" / "a@1.0.0.yaml"
    assert lock_path(rules, "a") == rules / "a.lock.json"
    assert pointer_path(tmp_path / "state") == tmp_path / "state" / "active-rulesets.json"


def test_the_change_signal_moves_with_every_file_a_reload_reads(tmp_path):
    rules = tree(tmp_path)
    catalog = tmp_path / "catalog"
    (catalog / "sub").mkdir(parents=True)
    pointer = pointer_path(tmp_path / "state")

    def signature():
        return stat_signature(rules, catalog, pointer)

    first = signature()
    assert signature() == first
    for change in (lambda: (catalog / "sub" / "offers.yaml").write_text("a: 1\n"),
                   lambda: (rules / "versions" / "a@1.0.0.yaml").write_text("b: 2\n"),
                   lambda: (rules / "b.yaml").write_text("longer: content\n"),
                   lambda: write_json_atomic(pointer, {"rulesets": {}})):
        before = signature()
        change()
        assert signature() != before
    before = signature()
    (rules / "notes.txt").write_text("not read by a reload")
    assert signature() == before


def test_the_atomic_writer_leaves_only_the_complete_file(tmp_path):
    target = tmp_path / "state" / "active-rulesets.json"
    write_json_atomic(target, {"rulesets": {"a": {"version": "1.0.0"}}})
    write_json_atomic(target, {"rulesets": {}})
    assert json.loads(target.read_text()) == {"rulesets": {}}
    assert [p.name for p in target.parent.iterdir()] == ["active-rulesets.json"]
