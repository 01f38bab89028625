"""schemathesis as `ci/fuzz.sh` runs it: the installed CLI, with one fault of CPython
3.11 worked around.

While hypothesis describes a lambda (for the repr of a filtered strategy), it parses the
lambda's whole source file, and CPython 3.11's parser can raise `SystemError: AST
constructor recursion depth mismatch` on a file it parses fine elsewhere. Hypothesis
handles a source it cannot parse (a `SyntaxError`) by describing the lambda as
`lambda: <unknown>`; this turns that one `SystemError` into a `SyntaxError`, so a pass
goes on instead of ending the operation with a traceback that says nothing about the
server under test. Any other error stays as it is.
"""

import ast
import sys

_parse = ast.parse


def _parse_or_syntax_error(*args, **kwargs):
    try:
        return _parse(*args, **kwargs)
    except SystemError as e:
        if "recursion depth mismatch" in str(e):
            raise SyntaxError(str(e)) from e
        raise


ast.parse = _parse_or_syntax_error

from schemathesis.cli import schemathesis  # noqa: E402

if __name__ == "__main__":
    sys.exit(schemathesis(prog_name="schemathesis"))
