"""User-facing errors.

Every problem a user can fix (bad file, bad option, infeasible request) is raised as a
:class:`UserError`. The CLI prints its message and exits with status 2, never a traceback.
The message always says what is wrong, where, and how to fix it.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or request (exit status 2).

    Parameters
    ----------
    what: what is wrong ("KEY_CODE 032050011 appears twice").
    where: the file, layer, row or option concerned.
    fix: how to fix it ("pass --crs EPSG:6678").
    findings: the rule findings behind it, when a check refused something (a plan that
        breaks the rules, a package the registry refuses); listed under ``what``, and in
        the user's language by the CLI.
    """

    exit_status = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None, findings=()):
        self.what = what
        self.where = where
        self.fix = fix
        self.findings = list(findings)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [self.what, *(f"  {f}" for f in self.findings)]
        if self.where:
            parts.append(f"  where: {self.where}")
        if self.fix:
            parts.append(f"  fix:   {self.fix}")
        return "\n".join(parts)


class InfeasibleError(UserError):
    """A planning request that no plan can satisfy (reported, never returned silently)."""


class PlanCheckError(UserError):
    """A plan that breaks a limit or a rule (names the offending town-blocks)."""
