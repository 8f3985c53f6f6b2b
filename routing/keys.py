"""Every Redis key of routing, built here and nowhere else.

Every key starts with `{<app_id>}:`. The braces are a Redis Cluster hash tag: the cluster
places a key by the text between them only, so all of a deployment's keys share one slot
and one node, and a Lua script may touch any of them. Scripts are still handed each key
they touch (`KEYS`), computed here, so a cluster client can route them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Fields of a lead's hash besides its record (`routing.store.LEAD_FIELDS`): one
#: `timer:<member>` per SLA timer set for it (so closing the lead removes them) and one
#: `done:<member>` per step carried out (so a step happens once, and the marks leave Redis
#: with the lead).
TIMER_FIELD, DONE_FIELD = "timer:", "done:"


@dataclass(frozen=True)
class Keys:
    """The keys of one deployment."""

    #: `{<app_id>}:`
    prefix: str

    @classmethod
    def of(cls, app_id: str) -> Keys:
        return cls(prefix(app_id))

    def lead(self, lead_id: str) -> str:
        """A lead's record, a hash (`routing.store.LEAD_FIELDS`, `TIMER_FIELD`,
        `DONE_FIELD`)."""
        return f"{self.prefix}lead:{lead_id}"

    @property
    def leads(self) -> str:
        """The pattern every lead's key matches (for a scan)."""
        return self.lead("*")

    def open(self, prospect: str) -> str:
        """The id of the prospect's open lead (assigned or acknowledged), a string."""
        return f"{self.prefix}open:{prospect}"

    def queue(self, rep: str, queue: str) -> str:
        """A rep's queue (`routing.lead_states.QUEUES`): lead ids scored by due time."""
        return f"{self.prefix}q:{rep}:{queue}"

    @property
    def holders(self) -> str:
        """Every rep ever given a lead (until their queues are empty), a set."""
        return f"{self.prefix}holders"

    def version(self, team: str) -> str:
        """A team's version, counting its changes: a change decided on an older one is
        refused."""
        return f"{self.prefix}ver:{team}"

    def rotation(self, team: str) -> str:
        """A team's rotation, a hash: each rep's place."""
        return f"{self.prefix}rot:{team}"

    def load(self, rep: str, period: str) -> str:
        """How many leads a rep was given in a day or month (`routing.policy.load_periods`)."""
        return f"{self.prefix}load:{rep}:{period}"

    @property
    def sla(self) -> str:
        """The SLA timers of every lead, a sorted set by due time (`routing.sla.Timer`)."""
        return f"{self.prefix}sla"

    def alerts(self, channel: str) -> str:
        """A channel's alerts to deliver, a stream."""
        return f"{self.prefix}alerts:{channel}"

    @property
    def channels(self) -> str:
        """Every channel an alert was ever queued on, a set."""
        return f"{self.prefix}channels"

    @property
    def outbox(self) -> str:
        """Routing's decisions to publish to Kafka, a stream."""
        return f"{self.prefix}outbox"

    def live(self, rep: str) -> str:
        """A rep's alerts for live clients, a stream (`routing.channels.stream`)."""
        return f"{self.prefix}live:{rep}"

    def migrated(self, name: str) -> str:
        """Set once the one-off migration `name` ran on this deployment."""
        return f"{self.prefix}migrated:{name}"


def prefix(app_id: str) -> str:
    return "{" + app_id + "}:"
