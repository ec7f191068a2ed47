"""Tests of scripts/check-layers.py on small source trees written for each test.

Run from the repository's root: `python3 -m unittest discover -s scripts -p 'test_*.py'`
(CI runs it in `.ci/run`). `CHECK_LAYERS` names another copy of the script to test.
"""
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import unittest

SCRIPT = os.environ.get(
    "CHECK_LAYERS", str(pathlib.Path(__file__).resolve().parent / "check-layers.py")
)


def check(files):
    """Runs the script on a tree of `files` ({path under src: text}): (exit code, output)."""
    with tempfile.TemporaryDirectory() as root:
        src = pathlib.Path(root) / "src"
        for rel, text in files.items():
            path = src / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        run = subprocess.run(
            [sys.executable, SCRIPT, str(src)], capture_output=True, text=True
        )
        return run.returncode, run.stdout


class GroupedImports(unittest.TestCase):
    def test_a_clean_tree_passes(self):
        code, out = check(
            {
                "policy/mod.rs": "use crate::{schema, retention::Ttl};\nuse self::x::Y;\nuse super::z;\n",
                "cli/mod.rs": "use crate::{config::{self, Settings}, pipeline};\n",
            }
        )
        self.assertEqual(code, 0, out)
        self.assertIn("0 problem(s)", out)

    def test_an_upward_import_in_a_group_is_refused(self):
        code, out = check({"policy/mod.rs": "use crate::{schema, app};\n"})
        self.assertEqual(code, 1, out)
        self.assertIn("policy/mod.rs:1: `policy` (row 1) imports `app` (row 4): upward", out)

    def test_a_nested_group_across_lines_is_read_item_by_item(self):
        code, out = check(
            {
                "decode.rs": """\
                    use crate::{
                        framing::{self, BodyKind},
                        // a comment naming crate::cli is not an import
                        schema::CdrEvent, // nor is this: app
                        topics::{plan::{Plan, Step}, Mode},
                    };
                """
            }
        )
        self.assertEqual(code, 1, out)
        self.assertIn("decode.rs:5: `decode` (row 1) imports `topics` (row 3): upward", out)
        self.assertNotIn("`cli`", out)
        self.assertNotIn("`app`", out)
        self.assertIn("1 problem(s)", out)

    def test_a_cycle_through_groups_is_refused(self):
        code, out = check(
            {
                "policy.rs": "use crate::{decode::Decoded};\n",
                "decode.rs": "pub use crate::{encode, schema};\n",
                "encode.rs": "use crate::{policy::{OutputRecord}};\n",
            }
        )
        self.assertEqual(code, 1, out)
        self.assertIn("import cycle", out)

    def test_test_code_after_cfg_test_is_not_checked(self):
        code, out = check(
            {"policy.rs": "use crate::schema;\n#[cfg(test)]\nmod tests {\n    use crate::{app};\n}\n"}
        )
        self.assertEqual(code, 0, out)

    def test_a_plain_path_is_still_read(self):
        code, out = check({"schema.rs": "fn f() { crate::cli::run(); }\n"})
        self.assertEqual(code, 1, out)
        self.assertIn("`schema` (row 0) imports `cli` (row 4): upward", out)


class Unsafe(unittest.TestCase):
    def test_unsafe_is_refused_outside_kafka(self):
        code, out = check({"audit/reader.rs": "fn f() { let x = unsafe { g() }; }\n"})
        self.assertEqual(code, 1, out)
        self.assertIn("audit/reader.rs:1: `unsafe` outside kafka/", out)

    def test_unsafe_under_kafka_and_in_comments_is_fine(self):
        code, out = check(
            {
                "kafka/native.rs": "// SAFETY: ...\nunsafe fn f() {}\n",
                "kafka.rs": "pub mod native;\n",
                "policy.rs": "// no unsafe here\n",
            }
        )
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
