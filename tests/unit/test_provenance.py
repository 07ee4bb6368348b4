"""The code digest that keys cached artifacts: it follows imports, lazy ones included, and
changes with any module reached, never with one that is not."""

import sys
import textwrap

import pytest

from instancehmr.provenance import code_digest


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``madeby`` on sys.path: ``a`` imports ``b`` at the top and ``c`` lazily;
    ``d`` is imported by nobody."""
    root = tmp_path / "madeby"
    root.mkdir()
    sources = {
        "__init__.py": "",
        "a.py": """
            from madeby.b import VALUE

            def make():
                from madeby import c
                return c.scale(VALUE)
        """,
        "b.py": "VALUE = 3\n",
        "c.py": "def scale(x):\n    return 2 * x\n",
        "d.py": "UNUSED = 1\n",
    }
    for name, text in sources.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m.split(".")[0] == "madeby"]:
        del sys.modules[name]


def fresh(module: str) -> str:
    code_digest.cache_clear()
    return code_digest(module)


def test_the_digest_follows_imports_and_nothing_else(package):
    before = fresh("madeby.a")
    assert len(before) == 16 and fresh("madeby.a") == before
    (package / "d.py").write_text("UNUSED = 2\n")
    assert fresh("madeby.a") == before, "a module nobody imports changed the digest"
    (package / "c.py").write_text("def scale(x):\n    return 3 * x\n")  # lazily imported
    after_c = fresh("madeby.a")
    assert after_c != before
    (package / "b.py").write_text("VALUE = 4\n")
    assert fresh("madeby.a") not in (before, after_c)


def test_the_synthetic_crowd_is_keyed_on_its_generator_labels_renderer_and_body():
    """What the synthetic shards are made of is in their converter's digest."""
    from instancehmr.provenance import _imported, _source

    module = "instancehmr.data.corpora.synthetic"
    reached, todo = {module}, [module]
    while todo:
        name = todo.pop()
        for other in _imported(name, _source(name), {"instancehmr"}):
            if other not in reached and _source(other) is not None:
                reached.add(other)
                todo.append(other)
    assert {
        "instancehmr.data.synthetic.scene", "instancehmr.data.synthetic.labels",
        "instancehmr.render.mesh", "instancehmr.body.synthetic", "instancehmr.data.schema",
    } <= reached  # fmt: skip
    assert "instancehmr.data.corpora.coco" not in reached


def test_a_module_without_source_is_an_error():
    with pytest.raises(ModuleNotFoundError, match=r"no Python source for module nowhere\.at_all"):
        fresh("nowhere.at_all")
