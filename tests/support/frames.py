"""Server frames that tests with a hand-written server need."""

from tui_collab import protocol as p


def welcome(user: str = "a", team: str = "t") -> str:
    """The smallest valid `welcome`, for servers that only need to let a client in."""
    return p.encode(
        p.Welcome(
            session="s-1",
            client_id="c-1",
            user=p.UserRef(id=user, name=user.upper()),
            team=team,
            server=p.ServerInfo(node="n", version="0", epoch="e"),
            limits=p.Limits(),
            members=[],
            boards=[],
        )
    )
