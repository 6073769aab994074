#!/usr/bin/python3
"""Example program for Writeback's exec connector (docs/connectors/exec.md).

Manages lines of one text file, e.g. an allow-list of client ids that some
legacy service reads: the target object is a line, and

  remove   deletes every line equal to the object;
  disable  comments every such line out ("# disabled by writeback: <line>",
           followed by "  # <reason>" when the `reason` argument is given).

The file is named by the environment variable WB_LINE_FILE, which the
operator sets in the connector's configuration (exec.env). The request
arrives as JSON on stdin, the verb in argv[1]; the response is one JSON
object on stdout. This is operator code, not part of Writeback: copy it and
adapt it to your system.
"""

import hashlib
import json
import os
import sys
import tempfile

CONTRACT = "writeback.exec/v1"
OPERATIONS = ("remove", "disable")
KNOWN_ARGS = ("reason",)


def reply(obj, code=0):
    sys.stdout.write(json.dumps(obj, sort_keys=True))
    sys.stdout.write("\n")
    sys.stdout.flush()
    sys.exit(code)


def error(code, message):
    reply({"error": {"code": code, "message": message}})


def read_file(path):
    """Returns (content, exists)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8"), True
    except FileNotFoundError:
        return "", False


def digest(content):
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def split_lines(content):
    """Lines separated by "\n" only (a "\r" is part of a line)."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def matching(lines, target):
    return [i for i, line in enumerate(lines) if line == target]


def observation(path, content, exists, target, hits):
    return {
        "check": "read_line_file",
        "subject": path,
        "detail": "%d line(s) equal to the target" % len(hits),
        "facts": {
            "file_present": "true" if exists else "false",
            "sha256": digest(content),
            "lines": str(len(split_lines(content))),
            "matching_lines": str(len(hits)),
        },
    }


def rewrite(path, new_content):
    directory = os.path.dirname(path) or "."
    mode = 0o644
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".wb-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def edited(lines, hits, operation, reason):
    out = []
    for i, line in enumerate(lines):
        if i not in hits:
            out.append(line)
        elif operation == "disable":
            comment = "# disabled by writeback: " + line
            if reason:
                comment += "  # " + reason
            out.append(comment)
    return "".join(l + "\n" for l in out)


def main():
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        request = json.load(sys.stdin)
    except ValueError as e:
        error("invalid_argument", "request is not JSON: %s" % e)
    if request.get("contract") != CONTRACT or request.get("verb") != verb:
        error("invalid_argument", "unexpected contract or verb")

    path = os.environ.get("WB_LINE_FILE", "")
    if not path.startswith("/"):
        error("failed", "WB_LINE_FILE must be set to an absolute path")

    if verb == "check":
        ok = os.path.isdir(os.path.dirname(path))
        reply({"ok": ok, "detail": "directory of %s %s" % (path, "exists" if ok else "is missing")})

    operation = request.get("operation")
    target = request.get("object", "")
    args = request.get("params", {}).get("args", {})
    if operation not in OPERATIONS:
        error("invalid_argument", "operation must be one of %s" % ", ".join(OPERATIONS))
    unknown = sorted(set(args) - set(KNOWN_ARGS))
    if unknown:
        error("invalid_argument", "unknown argument(s): %s" % ", ".join(unknown))
    if not target or "\n" in target:
        error("invalid_argument", "object must be one non-empty line")

    content, exists = read_file(path)
    lines = split_lines(content)
    hits = matching(lines, target)

    if verb == "plan":
        reply({
            "no_change": not hits,
            "summary": ("%s %d line(s) of %s" % (operation, len(hits), path)) if hits
                       else "no line equal to the target in %s" % path,
            "changes": ["%s line %d" % (operation, i + 1) for i in hits],
            "before": observation(path, content, exists, target, hits),
            "state": json.dumps({"sha256": digest(content)}),
        })

    if verb == "apply":
        try:
            expected = json.loads(request.get("plan_state", ""))["sha256"]
        except (ValueError, KeyError, TypeError):
            error("invalid_argument", "plan_state is not a state made by this program's plan")
        if not hits:
            reply({"changes": []})  # already done: applying again changes nothing
        if digest(content) != expected:
            error("failed_precondition", "%s changed since the plan" % path)
        rewrite(path, edited(lines, set(hits), operation, args.get("reason", "")))
        reply({"changes": ["%s line %d of %s" % (operation, i + 1, path) for i in hits]})

    if verb == "verify":
        reply({
            "outcome": "failed" if hits else "verified",
            "detail": ("%d line(s) equal to the target remain" % len(hits)) if hits
                      else "no line equal to the target in %s" % path,
            "after": observation(path, content, exists, target, hits),
        })

    error("invalid_argument", "unknown verb %r" % verb)


if __name__ == "__main__":
    main()
