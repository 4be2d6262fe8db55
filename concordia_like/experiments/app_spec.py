"""The scenario schema's interventions and measurements over the world's apps
(`world.apps`): a post put on the feed, the feed's ranking switched, an app out of
service for a while; posts, messages, likes, money moved, and how far a post reached.

They need a world whose file declares the app they name; `experiments.app_measures`
checks that at load (at the file, line and field) and computes the measurements from
the app state, which the world's checkpoints hold, so a resumed or forked run measures
exactly as an uninterrupted one.

    interventions:
      town_post: {kind: post, at_step: 2, text: The bridge closes on Friday.}  # as the town
      her_post: {kind: post, at_step: 2, author: Margo Vell, text: ...}       # as a resident
      ranked: {kind: feed_ranking, at_step: 4, ranking: engagement}
      no_feed: {kind: outage, at_step: 1, app: feed}                 # to the end of the run
      bank_down: {kind: outage, at_step: 3, app: bank, steps: 2}     # steps 3 and 4
    measurements:
      - {name: posts, kind: posts}
      - {name: rumour_msgs, kind: messages, contains: bridge}
      - {name: likes, kind: likes}
      - {name: paid, kind: money_moved}
      - {name: reach, kind: reach, contains: bridge}
      - {name: cascade, kind: reach, intervention: town_post, stat: cascade}
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from concordia_like.experiments.spec_base import MeasureBase, Name, Timed

AppName = Literal["messages", "feed", "bank"]

# -- interventions ----------------------------------------------------------------------


class InjectPost(Timed):
    """A post on the town feed at the start of its step: by a resident (`author`, who
    must hold the device; it counts against that resident's posts of the step) or, with
    no author, by the town itself. `reply_to`: the id of a post it answers (`p1`)."""

    kind: Literal["post"] = "post"
    text: str = Field(min_length=1, max_length=1000)
    author: str | None = None
    reply_to: str | None = Field(None, pattern=r"^p[1-9][0-9]*$")


class FeedRanking(Timed):
    """The feed is ranked by another policy from this step on; `text` announced."""

    kind: Literal["feed_ranking"] = "feed_ranking"
    ranking: Literal["chronological", "engagement"]
    text: str | None = Field(None, max_length=500)
    place: str | None = None


class Outage(Timed):
    """An app is out of service for `steps` steps from this one (to the end of the run
    when not given): every use of it is refused while it is down; `text` announced."""

    kind: Literal["outage"] = "outage"
    app: AppName
    steps: int | None = Field(None, ge=1)
    text: str | None = Field(None, max_length=500)
    place: str | None = None


# -- measurements ------------------------------------------------------------------------


class AppMeasure(MeasureBase):
    """A measurement of the apps' state (see `experiments.app_measures`)."""

    #: the app the world must declare for it
    app: ClassVar[str] = "feed"


class PostCount(AppMeasure):
    """How many posts are on the feed: of one `author`, mentioning a word
    (case-insensitive); `replies`: only replies (true), only posts that answer none
    (false), or both (not given)."""

    kind: Literal["posts"] = "posts"
    author: str | None = None
    contains: str | None = Field(None, min_length=1, max_length=80)
    replies: bool | None = None


class MessagesSent(AppMeasure):
    """How many messages were sent: by one `sender`, to one `to`, mentioning a word."""

    kind: Literal["messages"] = "messages"
    app: ClassVar[str] = "messages"
    sender: str | None = None
    to: str | None = None
    contains: str | None = Field(None, min_length=1, max_length=80)


class LikeCount(AppMeasure):
    """How many likes posts have: all posts, one `post`, or those mentioning a word."""

    kind: Literal["likes"] = "likes"
    post: str | None = Field(None, pattern=r"^p[1-9][0-9]*$")
    contains: str | None = Field(None, min_length=1, max_length=80)


class MoneyMoved(AppMeasure):
    """Money moved through the bank: the `sum` of the transfers (default) or their
    `count`, of one `sender`, to one `to`."""

    kind: Literal["money_moved"] = "money_moved"
    app: ClassVar[str] = "bank"
    stat: Literal["sum", "count"] = "sum"
    sender: str | None = None
    to: str | None = None


class PostReach(AppMeasure):
    """How far a piece of news went through the apps. What is followed is one of: a
    `post` (its id), the post an `intervention` of kind `post` made, or whatever
    `contains` a word (posts and messages). With the replies to those posts, at any
    depth, that is the thread. `stat`:

    - reach: residents other than its author who were shown a post of the thread when
      they read the feed, or (with `contains`) were sent a message mentioning the word;
    - cascade: its authors and everyone reached, and whoever was then sent a message
      by a resident already in the cascade (from the step after that one joined; with
      `contains`, only messages mentioning the word count): the size of the tree."""

    kind: Literal["reach"] = "reach"
    post: str | None = Field(None, pattern=r"^p[1-9][0-9]*$")
    intervention: Name | None = None
    contains: str | None = Field(None, min_length=1, max_length=80)
    stat: Literal["reach", "cascade"] = "reach"

    @model_validator(mode="after")
    def _one_thing(self) -> PostReach:
        given = [x for x in (self.post, self.intervention, self.contains) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of post, intervention and contains")
        return self


APP_KINDS = ("posts", "messages", "likes", "money_moved", "reach")
APP_INTERVENTIONS = (InjectPost, FeedRanking, Outage)
