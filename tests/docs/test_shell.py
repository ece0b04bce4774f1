"""The shell reader splits the guides' code the way a POSIX shell would."""

from __future__ import annotations

from tests.docs.shell import SUBSTITUTION, read


def test_continuations_quotes_comments_and_redirections() -> None:
    (command,) = read("aws s3 cp a.zip \\\n  \"s3://$BUCKET/k\" --sse 'x y'  # a comment\n" + "")
    assert command.words == ["aws", "s3", "cp", "a.zip", "s3://$BUCKET/k", "--sse", "x y"]
    assert command.uses == {"BUCKET"}
    (echo,) = read('echo "A=$A" >> keyreport.env 2>/dev/null')
    assert echo.words == ["echo", "A=$A"]


def test_a_substitution_is_its_own_command_and_its_output_is_named() -> None:
    inner, outer = read('KEY_ARN=$(aws kms create-key \\\n  --query "KeyMetadata.Arn" --output text)')
    assert inner.words[:3] == ["aws", "kms", "create-key"] and inner.output == "KEY_ARN"
    assert outer.words == [] and outer.assignments == [("KEY_ARN", SUBSTITUTION)]
    assert inner.line == outer.line == 1


def test_pipes_lists_loops_and_exports() -> None:
    commands = read('export A=1 B=2\nuntil a x |\n  b y\ndo sleep 3; done\nfor t in p q; do c --n "$t"; done')
    assert commands[0].exported and commands[0].assignments == [("A", "1"), ("B", "2")]
    assert [(c.words[0], c.condition) for c in commands[1:4]] == [("a", True), ("b", True), ("sleep", False)]
    assert commands[-1].words == ["c", "--n", "$t"] and ("t", "") in commands[-2].assignments


def test_placeholders_are_words_not_redirections() -> None:
    (command,) = read("az ad app credential delete --key-id <old keyId> --cert")
    assert command.words[-2:] == ["<old keyId>", "--cert"]


def test_an_unquoted_here_document_is_read_as_shell_a_quoted_one_is_not() -> None:
    commands = read("cat > f <<EOF\nA=$(aws sts get-caller-identity)\nEOF\ncat > g <<'EOF'\nB=$(aws iam x)\nEOF\n")
    assert [c.words[:2] for c in commands if c.words] == [["cat"], ["aws", "sts"], ["cat"]]
    assert [(c.assignments, c.writes) for c in commands if c.assignments] == [([("A", SUBSTITUTION)], ["f"])]
    (echo,) = read('echo "B=$B" >> keyreport.env')
    assert echo.writes == ["keyreport.env"]
