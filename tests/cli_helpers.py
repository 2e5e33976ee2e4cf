"""Running ncc's CLI in tests and checking how it fails."""

from click.testing import CliRunner
from ncc.cli.main import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, code, fragment=None):
    """Exit `code`, one `ncc: error:` line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ncc: error:"), result.stderr
    assert "Traceback" not in result.output
    if fragment:
        assert fragment in lines[0], lines[0]
