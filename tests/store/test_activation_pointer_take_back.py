"""An activation whose history entry the store refused takes its pin back
(app/rules/service/activator.py): the pointer's take_back puts back what
the last compare_and_set replaced, on the file (TinyDB deployments, by a
rename of the previous file kept as a hard link: no room needed) and in
the store (PostgreSQL deployments); never over a later activation."""
from test_activation_pointer import entry, pointer  # noqa: F401 - the fixture


def test_take_back_puts_back_the_pointer_before_the_last_write(pointer):  # noqa: F811
    assert pointer.compare_and_set(0, entry("1.0.0")) == 1
    assert pointer.compare_and_set(1, entry("1.1.0")) == 2
    assert pointer.take_back(2) is True
    assert pointer.read()[0] == entry("1.0.0")
    pointer.settle()


def test_take_back_of_the_first_write_leaves_no_pointer(pointer):  # noqa: F811
    assert pointer.compare_and_set(0, entry("1.0.0")) == 1
    assert pointer.take_back(1) is True
    assert pointer.read()[0] == {}


def test_take_back_never_undoes_a_later_activation(pointer):  # noqa: F811
    pointer.compare_and_set(0, entry("1.0.0"))
    pointer.compare_and_set(1, entry("1.1.0"))
    assert pointer.take_back(1) is False            # revision 2 came since: it stays
    assert pointer.read()[0] == entry("1.1.0")


def test_a_settled_write_leaves_no_copy_beside_the_file(tmp_path):
    from app.rules.repository.pointer import FilePointer

    file_pointer = FilePointer(tmp_path / "active-rulesets.json")
    file_pointer.compare_and_set(0, entry("1.0.0"))
    file_pointer.compare_and_set(1, entry("1.1.0"))
    assert file_pointer.previous_path.exists()
    file_pointer.settle()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["active-rulesets.json"]


def test_a_filesystem_without_hard_links_still_activates_and_takes_back(tmp_path, monkeypatch):
    """Some filesystems (SMB, vfat, a few FUSE ones) refuse hard links: the
    replaced pointer is then kept in memory, and an activation still works."""
    import errno
    import os

    from app.rules.repository.pointer import FilePointer

    def no_link(*_args, **_kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    file_pointer = FilePointer(tmp_path / "active-rulesets.json")
    assert file_pointer.compare_and_set(0, entry("1.0.0")) == 1
    assert file_pointer.compare_and_set(1, entry("1.1.0")) == 2
    assert not file_pointer.previous_path.exists()
    assert file_pointer.take_back(2) is True
    assert file_pointer.read()[0] == entry("1.0.0")
    assert file_pointer.read()[1] == 1                # the file as it was, revision and all
    assert file_pointer.compare_and_set(1, entry("1.2.0")) == 2
    file_pointer.settle()
    assert file_pointer.read()[0] == entry("1.2.0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["active-rulesets.json"]
