"""The generators a service's clients may ask for: the built-in specs
(``KNOWN_SPECS``) and those its operator listed with ``gan2x serve
--generator [NAME=]SPEC``.

A client names a generator, never a file: letting it send ``stylegan2:PATH``
or ``python:MODULE:CALLABLE`` would let it load any file or run any code, so
a request is accepted only for a built-in spec, a listed name, or a listed
spec written exactly as the operator wrote it (``GeneratorAllowList.resolve``).
The worker loads the resolved spec with the ordinary ``load_generator``.

Each listed spec is loaded once, on the CPU, when the service starts
(``GeneratorAllowList.check``): a missing, corrupt or unrecognised checkpoint,
or a ``python:`` entry that fails, stops ``gan2x serve`` with the reason
instead of failing every job later. That costs the load time of each listed
generator once at start-up (seconds for a 1024-pixel StyleGAN2 pickle); the
loaded network is dropped before the service takes requests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A short name for a listed spec: letters, digits, ``.``, ``_``, ``-`` (no
``:`` or ``/``, so a name never reads as a spec)."""
FILE_KINDS = ("stylegan2", "dcgan", "torchscript", "python")


def _known_specs() -> tuple[str, ...]:
    from ..generators import KNOWN_SPECS  # imported here: gan2x.generators imports torch, the config must not

    return KNOWN_SPECS


@dataclass(frozen=True)
class ListedGenerator:
    name: str
    """What clients send as ``source.generator`` (the spec itself when the operator gave no name)."""
    spec: str
    """The spec ``load_generator`` is given, as the operator wrote it."""

    @property
    def kind(self) -> str:
        return self.spec.partition(":")[0]


def parse_generator_option(text: str) -> ListedGenerator:
    """``--generator`` text: ``SPEC`` or ``NAME=SPEC`` (a leading word made of
    ``NAME_PATTERN`` characters, then ``=``). Raises ValueError saying what to write."""
    text = text.strip()
    name, equals, rest = text.partition("=")
    if equals and NAME_PATTERN.match(name.strip()):
        name, spec = name.strip(), rest.strip()
    else:
        name = spec = text
    kind, _, target = spec.partition(":")
    if kind not in ("synthetic", *FILE_KINDS) or (kind in FILE_KINDS and not target.strip()):
        raise ValueError(f"--generator {text!r}: write SPEC or NAME=SPEC, where SPEC is one of synthetic[:faces|"
                         "objects], stylegan2:PATH, dcgan:PATH, torchscript:PATH, python:MODULE:CALLABLE (docs/generators.md)")
    return ListedGenerator(name=name, spec=spec)


class GeneratorAllowList:
    """The built-in specs plus the operator's listed generators."""

    def __init__(self, listed: tuple[ListedGenerator, ...] | list[ListedGenerator] = ()):
        self.listed = tuple(listed)
        self._by_name = {spec: spec for spec in _known_specs()}
        for entry in self.listed:
            if entry.name in self._by_name and self._by_name[entry.name] != entry.spec:
                raise ValueError(f"--generator {entry.name}={entry.spec}: the name {entry.name!r} is already "
                                 f"taken (by {self._by_name[entry.name]!r}); give each generator its own name")
            self._by_name[entry.name] = entry.spec
        self._specs = {entry.spec for entry in self.listed}

    def names(self) -> list[str]:
        """What clients may send, built-in specs first, in the operator's order."""
        return list(self._by_name)

    def resolve(self, requested: str) -> str | None:
        """The spec to load for a client's ``source.generator``; None when it is not allowed."""
        if requested in self._by_name:
            return self._by_name[requested]
        if requested in self._specs:
            return requested
        return None

    def refusal(self, requested: str) -> str:
        """The message for a generator that is not allowed."""
        shown = requested if len(requested) <= 80 else requested[:77] + "..."
        return (f"generator {shown!r} is not available on this service; choose one of: {', '.join(self.names())} "
                "(GET /v1/capabilities lists them; the service's operator adds more with "
                "gan2x serve --generator NAME=SPEC)")

    def check(self) -> dict[str, int]:
        """Loads every allowed spec once on the CPU and drops it; returns each
        name's image resolution (pixels a side). Raises ValueError naming the
        ``--generator`` entry and why it cannot be used."""
        from ..generators import load_generator

        resolutions = {spec: int(load_generator(spec).img_resolution) for spec in _known_specs()}  # cheap
        for entry in self.listed:
            try:
                generator = load_generator(entry.spec, device="cpu")
                resolutions[entry.name] = int(generator.img_resolution)
            except Exception as error:  # a python: entry may raise anything; all of it is a start-up refusal
                label = entry.spec if entry.name == entry.spec else f"{entry.name}={entry.spec}"
                raise ValueError(f"--generator {label}: cannot load it: {error}") from error
            del generator
        return resolutions
