"""Dockerfile builds, as dockerd's classic builder does them (docs/build.md).

parser (Dockerfile text -> instructions), shlex (variable substitution), dockerignore (patterns,
standard library only: the CLI uses it too), context (the build context tar, extracted safely),
instructions (pure helpers: history text, HEALTHCHECK, EXPOSE, platform), remote (ADD <url>),
cache (the cache index), builder (stages and steps over the daemon's own machinery).
"""
