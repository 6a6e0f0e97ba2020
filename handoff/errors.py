"""Domain errors raised by the services; the web layer maps each to one HTTP status.

TriageError
├── NotFound          (404) the object does not exist, or the caller may not see it
├── PermissionDenied  (403) the caller's role does not allow the action
├── Conflict          (409) the object changed under the caller (lost a race)
│   └── InvalidTransition  the state machine has no such transition from this state
└── InvalidInput      (422) the request is well-formed but its content is not acceptable
"""


class TriageError(Exception):
    """Base class of every domain error."""


class NotFound(TriageError):
    pass


class PermissionDenied(TriageError):
    pass


class Conflict(TriageError):
    pass


class InvalidTransition(Conflict):
    pass


class InvalidInput(TriageError):
    pass
