"""Who may see and do what: the one place access rules live.

`caller` (who is asking), `scopes` (what its token allows), `visibility` (which stored rows it
may see, as SQL applied inside every read), `writing` (which writes it may make).
"""

from app.access.caller import ANONYMOUS, SYSTEM, Caller, Role, caller_for

__all__ = ["ANONYMOUS", "SYSTEM", "Caller", "Role", "caller_for"]
