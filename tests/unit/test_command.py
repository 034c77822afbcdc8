"""Commands are values: secrets masked when shown, every word quoted for a remote shell."""

import shlex
import subprocess

import pytest

from wpgate.command import Command, Secret, mask


def test_display_masks_secrets_in_arguments_and_environment():
    command = Command.of("mysqldump", "--password", Secret("s3cret"), env={"MYSQL_PWD": Secret("s3cret")})
    shown = command.display()
    assert "s3cret" not in shown
    assert "***" in shown
    assert command.real_argv() == ["mysqldump", "--password", "s3cret"]
    assert command.secrets() == ["s3cret", "s3cret"]
    assert "s3cret" not in repr(Secret("s3cret"))


@pytest.mark.parametrize("hostile", [
    "a; rm -rf /", "$(touch /tmp/pwned)", "`id`", "x' y \"z", "a\nb", "--help", "*", "~root",
])
def test_shell_line_passes_every_word_through_a_real_shell_unchanged(hostile):
    command = Command.of("printf", "%s|", hostile, "plain", cwd="/", env={"V": hostile})
    line = command.shell_line()
    output = subprocess.run(["sh", "-c", line + '; printf "%s" "$V"'], capture_output=True, text=True)
    # env applies to printf only, so $V after it is empty: the words themselves came through intact.
    assert output.stdout == f"{hostile}|plain|"


def test_shell_line_quotes_cwd():
    line = Command.of("pwd", cwd="/tmp/a b").shell_line()
    assert line.startswith("cd '/tmp/a b' && ")


def test_parts_must_be_strings():
    with pytest.raises(TypeError):
        Command.of("ls", 3)


def test_mask_replaces_secret_values_in_output():
    assert mask("token=abc123 ok", ["abc123"]) == "token=*** ok"
    assert mask("nothing", [""]) == "nothing"


def test_shell_line_is_parseable_back_to_the_same_words():
    command = Command.of("php", "-r", "echo 'hi';", "--", "a b")
    assert shlex.split(command.shell_line()) == ["php", "-r", "echo 'hi';", "--", "a b"]
