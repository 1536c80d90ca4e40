"""Budget scopes: what each limited scope (the run, a step with ``limits=``, a map item)
has spent and holds in reservations, and whether a new reservation fits.

Pure bookkeeping, no Trio: the governor decides with it. A scope's spend also counts
in every enclosing scope, so a reservation must fit in all of them. Dollars are
exact decimals; requests are counted when a call is admitted (never refunded).
"""

from __future__ import annotations

import enum
from decimal import Decimal

from ..usage import UsageLimits, format_money, money

ZERO = Decimal(0)


class Stop(enum.Enum):
    BREACH = "breach"
    """Spend passed a limit."""
    DENIED = "denied"
    """A reservation could never fit: the scope admits nothing more."""


class Verdict(enum.Enum):
    ADMIT = "admit"
    WAIT = "wait"
    DENY = "deny"


class BudgetScope:
    """One limited scope; ``parent`` is the enclosing one (None for the run)."""

    __slots__ = (
        "cancel_scope",
        "label",
        "limits",
        "parent",
        "reserved_cost",
        "reserved_tokens",
        "scopes",
        "spent_cost",
        "spent_requests",
        "spent_tokens",
        "stop",
        "stop_message",
    )

    def __init__(
        self,
        label: str | None,
        limits: UsageLimits,
        parent: BudgetScope | None,
        cancel_scope: object = None,
    ) -> None:
        self.label = label
        """The step name the scope belongs to; None for the run."""
        self.limits = limits
        self.parent = parent
        self.cancel_scope = cancel_scope
        self.spent_cost = ZERO
        self.spent_tokens = 0
        self.spent_requests = 0
        self.reserved_cost = ZERO
        self.reserved_tokens = 0
        self.stop: Stop | None = None
        self.stop_message: str | None = None
        self.scopes: tuple[BudgetScope, ...] = (*parent.scopes, self) if parent else (self,)
        """This scope and every enclosing one, outermost (the run) first."""

    def chain(self) -> tuple[BudgetScope, ...]:
        return self.scopes

    def _where(self) -> str:
        return f" in step '{self.label}'" if self.label is not None else ""

    # -- deciding -------------------------------------------------------------------

    def verdict(self, cost: Decimal, tokens: int) -> tuple[Verdict, str | None]:
        """Whether one more request reserving ``cost``/``tokens`` fits here now."""
        if self.stop is not None:
            return Verdict.DENY, self.stop_message
        limits = self.limits
        requests_limit = limits.total_requests_limit
        if requests_limit is not None and self.spent_requests + 1 > requests_limit:
            return Verdict.DENY, limits.requests_message() + self._where()
        wait = False
        cost_limit = limits.total_cost_usd_limit
        if cost_limit is not None and cost:
            bound = money(cost_limit)
            if self.spent_cost + cost > bound:
                return Verdict.DENY, (
                    f"Cost limit of ${format_money(bound)} reached{self._where()}: a reservation "
                    f"of ${format_money(cost)} does not fit (spent ${format_money(self.spent_cost)}"
                    f", limit ${format_money(bound)})"
                )
            wait = self.spent_cost + self.reserved_cost + cost > bound
        tokens_limit = limits.total_tokens_limit
        if tokens_limit is not None and tokens:
            if self.spent_tokens + tokens > tokens_limit:
                return Verdict.DENY, (
                    f"Token limit of {tokens_limit} reached{self._where()}: a reservation of "
                    f"{tokens} tokens does not fit (spent {self.spent_tokens}, limit "
                    f"{tokens_limit})"
                )
            wait = wait or self.spent_tokens + self.reserved_tokens + tokens > tokens_limit
        if self.spent_over() is not None:
            return Verdict.DENY, self.spent_over()
        return (Verdict.WAIT, None) if wait else (Verdict.ADMIT, None)

    def spent_over(self) -> str | None:
        """The breach message when spend has passed a limit (spending exactly it is fine)."""
        limits = self.limits
        if limits.total_cost_usd_limit is not None and self.spent_cost > money(
            limits.total_cost_usd_limit
        ):
            return limits.cost_message() + self._where()
        if limits.total_tokens_limit is not None and self.spent_tokens > limits.total_tokens_limit:
            return limits.tokens_message() + self._where()
        return None

    # -- changing -------------------------------------------------------------------

    def hold(self, cost: Decimal, tokens: int) -> None:
        self.reserved_cost += cost
        self.reserved_tokens += tokens
        self.spent_requests += 1

    def release(self, cost: Decimal, tokens: int) -> None:
        self.reserved_cost -= cost
        self.reserved_tokens -= tokens

    def spend(self, cost: Decimal, tokens: int) -> None:
        self.spent_cost += cost
        self.spent_tokens += tokens

    def close(self, kind: Stop, message: str) -> bool:
        """Stop admissions here; True the first time (a breach overrides a denial)."""
        if self.stop is Stop.BREACH or self.stop is kind:
            return False
        self.stop, self.stop_message = kind, message
        return True
