"""The run-rule options of `ncc bench` (and of whatever else times a bundle):
the flags of ncc.runtime_harness.rt_rules, which every harness takes alike,
passed on as `rules` (a RunRules) and `rules_given` (the ones on the command line)."""

import functools

import click
from click.core import ParameterSource

from ncc.core.errors import UsageError
from ncc.runtime_harness.rt_rules import OPTIONS, RunRules, flag

_CLICK_TYPES = {int: click.INT, float: click.FLOAT, "cpus": click.STRING}


def run_rule_options(func):
    defaults = RunRules()

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        values = {name: kwargs.pop(name) for name, _kind, _help in OPTIONS}
        try:
            rules = RunRules.from_options(**values)
        except ValueError as err:
            raise UsageError(str(err)) from None
        context = click.get_current_context()
        given = {name for name in values if context.get_parameter_source(name) == ParameterSource.COMMANDLINE}
        return func(*args, rules=rules, rules_given=given, **kwargs)

    for name, kind, help_text in reversed(OPTIONS):
        if kind is bool:
            wrapper = click.option(flag(name), name, is_flag=True, help=help_text)(wrapper)
        else:
            default = getattr(defaults, name)
            wrapper = click.option(flag(name), name, type=_CLICK_TYPES[kind], default=default,
                                   show_default=default is not None, metavar="CPUS" if kind == "cpus" else None,
                                   help=help_text)(wrapper)
    return wrapper
