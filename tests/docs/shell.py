"""A small POSIX-shell reader for the guides' code: commands with their words, assignments and variables used."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SUBSTITUTION = "$(command)"  # stands for a command substitution's output inside a word
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_KEYWORDS = {"do", "then", "else", "elif", "!", "{"}
_LOOP_KEYWORDS = {"until", "while", "if"}
_ENDS = {"done", "fi", "}", "esac"}


@dataclass
class Command:
    """One simple command: `words` after any VAR=value prefix, `assignments` those prefixes (or the whole command)."""

    words: list[str]
    line: int
    assignments: list[tuple[str, str]] = field(default_factory=list)
    uses: set[str] = field(default_factory=set)
    condition: bool = False  # the condition of an until/while/if: run again or checked, not run once blindly
    output: str = ""  # the variable this command's output is assigned to, for VAR=$(command)
    exported: bool = False  # `export A=…`: the assignments reach the commands the shell starts
    writes: list[str] = field(default_factory=list)  # files its output (or its here-document line) goes to


@dataclass
class _Reader:
    text: str
    line: int
    i: int = 0
    commands: list[Command] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    word: str | None = None
    uses: set[str] = field(default_factory=set)
    condition: bool = False
    heredocs: list[tuple[str, bool, str]] = field(default_factory=list)
    redirect: bool = False
    targets: list[str] = field(default_factory=list)
    start_line: int = 0

    def add(self, text: str) -> None:
        if self.word is None and not self.words:
            self.start_line = self.line
        self.word = (self.word or "") + text

    def end_word(self) -> None:
        if self.word is None:
            return
        if self.redirect:
            self.redirect = False
            self.targets.append(self.word)
        elif not self.words and self.word in _KEYWORDS | _LOOP_KEYWORDS | _ENDS:
            self.condition = self.condition or self.word in _LOOP_KEYWORDS
        else:
            self.words.append(self.word)
        self.word = None

    def end_command(self, piped: bool = False) -> None:
        """A pipe keeps a loop's condition going: every command of `until a | b` is part of it."""
        self.end_word()
        if self.words:
            self.commands.append(_command(self.words, self.start_line, self.uses, self.condition))
            self.commands[-1].writes = self.targets
        self.words, self.uses, self.condition = [], set(), self.condition and piped
        self.targets = []


def _command(words: list[str], line: int, uses: set[str], condition: bool) -> Command:
    assignments = []
    while words and (match := _ASSIGNMENT.match(words[0])) and words[0] != "=":
        assignments.append((match[1], match[2]))
        words = words[1:]
    if words[:1] == ["export"]:
        assignments += [(m[1], m[2]) for w in words[1:] if (m := _ASSIGNMENT.match(w))]
        return Command([], line, assignments, uses, condition, exported=True)
    if words[:1] == ["for"] and len(words) > 2 and words[2] == "in":
        return Command([], line, [(words[1], "")], uses, condition)
    return Command(words, line, assignments, uses, condition)


def read(text: str, first_line: int = 1) -> list[Command]:
    """Every command of a script, those inside $(…) included (before the command that uses their output)."""
    reader = _Reader(text, first_line)
    while reader.i < len(text):
        _step(reader)
    reader.end_command()
    return reader.commands


def _step(r: _Reader) -> None:
    text, c = r.text, r.text[r.i]
    two = text[r.i : r.i + 2]
    if two == "\\\n":
        r.i, r.line = r.i + 2, r.line + 1
    elif c == "\n" and text[: r.i].rstrip(" \t").endswith(("|", "&&")):
        r.i, r.line = r.i + 1, r.line + 1  # the pipeline or list goes on on the next line
    elif c == "\n":
        r.end_command()
        r.i, r.line = r.i + 1, r.line + 1
        _heredoc_bodies(r)
    elif c in " \t":
        r.end_word()
        r.i += 1
    elif c == "#" and r.word is None:
        r.i = text.find("\n", r.i) if "\n" in text[r.i :] else len(text)
    elif c == "'":
        end = text.index("'", r.i + 1)
        r.add(text[r.i + 1 : end])
        r.line += text.count("\n", r.i, end)
        r.i = end + 1
    elif c == '"':
        _double_quoted(r)
    elif two == "$(":
        _substitution(r)
    elif c == "$":
        _variable(r)
    elif two == "<<":
        _heredoc_start(r)
    elif c == "<" and _placeholder_end(text, r.i) > 0:
        end = _placeholder_end(text, r.i)
        r.add(text[r.i : end + 1])
        r.i = end + 1
    elif c in "<>":
        _redirect(r)
    elif c in ";|&()":
        r.end_command(piped=c == "|" and two != "||")
        r.i += 2 if two in ("||", "&&") else 1
    else:
        r.add("\\" if c == "\\" and r.i + 1 >= len(text) else (text[r.i + 1] if c == "\\" else c))
        r.i += 2 if c == "\\" else 1


def _placeholder_end(text: str, i: int) -> int:
    """`<old keyId>`: a guide's placeholder, not a redirection (a letter follows `<`, `>` closes it on the line)."""
    end_of_line = text.find("\n", i)
    end = text.find(">", i, end_of_line if end_of_line >= 0 else len(text))
    return end if end > i + 1 and text[i + 1].isalpha() else -1


def _redirect(r: _Reader) -> None:
    if r.word is not None and r.word.isdigit():
        r.word = None  # 2> : the file descriptor is no word of the command
    r.end_word()
    r.i += 1
    while r.i < len(r.text) and r.text[r.i] in ">&":
        r.i += 1
    if r.i < len(r.text) and r.text[r.i].isdigit():
        r.i += 1  # >&2
    else:
        r.redirect = True


def _variable(r: _Reader) -> None:
    match = _VARIABLE.match(r.text, r.i)
    if match is None:
        r.add("$")
        r.i += 1
        return
    r.uses.add(match[1])
    end = match.end() + (1 if r.text[r.i + 1] == "{" else 0)
    r.add(r.text[r.i : end])
    r.i = end


def _double_quoted(r: _Reader) -> None:
    r.i += 1
    r.add("")
    while r.text[r.i] != '"':
        two = r.text[r.i : r.i + 2]
        if two == "\\\n":
            r.i, r.line = r.i + 2, r.line + 1  # a line continuation, inside quotes too
        elif two in ('\\"', "\\\\", "\\$", "\\`"):
            r.add(two[1])
            r.i += 2
        elif two == "$(":
            _substitution(r)
        elif r.text[r.i] == "$":
            _variable(r)
        else:
            r.line += r.text[r.i] == "\n"
            r.add(r.text[r.i])
            r.i += 1
    r.i += 1


def _substitution(r: _Reader) -> None:
    """$(…): its commands are read on their own; the word gets a marker, and the output's variable is noted."""
    end = _closing_parenthesis(r.text, r.i + 2)
    inner = read(r.text[r.i + 2 : end], r.line)
    target = r.word[:-1] if r.word is not None and not r.words and r.word.endswith("=") else ""
    if inner and target and _ASSIGNMENT.match(target + "=x"):
        inner[-1].output = target
    r.commands.extend(inner)
    for command in inner:
        r.uses |= command.uses
    r.line += r.text.count("\n", r.i, end)
    r.add(SUBSTITUTION)
    r.i = end + 1


def _closing_parenthesis(text: str, i: int) -> int:
    depth, quote = 1, ""
    while True:
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1


def _heredoc_start(r: _Reader) -> None:
    match = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_]+)\1").match(r.text, r.i)
    assert match, f"line {r.line}: a here-document without a delimiter"
    r.heredocs.append((match[2], not match[1], r.targets[-1] if r.targets else ""))
    r.end_word()
    r.i = match.end()


def _heredoc_bodies(r: _Reader) -> None:
    """An unquoted here-document is read as shell (the guides write assignments into a file they source)."""
    for delimiter, expands, target in r.heredocs:
        end = re.compile(rf"^{delimiter}$", re.MULTILINE).search(r.text, r.i)
        assert end, f"line {r.line}: here-document {delimiter} is never closed"
        if expands:
            body = read(r.text[r.i : end.start()], r.line)
            for command in body:
                command.writes = [target] if target and not command.output else command.writes
            r.commands.extend(body)
        r.line += r.text.count("\n", r.i, end.end())
        r.i = end.end()
    r.heredocs = []
