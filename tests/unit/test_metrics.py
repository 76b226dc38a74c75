"""The metrics helpers that sit on the hot path."""

from server.metrics import Metrics, frame_type
from tui_collab.protocol import Ack, Cursors, ErrorCode, ErrorMessage, encode


def test_frame_type_reads_what_encode_writes_first() -> None:
    assert frame_type(encode(Ack(re="x"))) == "ack"
    assert frame_type(encode(Cursors(board="b", cursors=[]))) == "cursors"
    assert frame_type(encode(ErrorMessage(code=ErrorCode.INTERNAL, message="m"))) == "error"
    assert frame_type("garbage") == "other"
    assert frame_type('{"type":"') == "other"


def test_sent_counts_recipients_by_type() -> None:
    metrics = Metrics()
    metrics.sent(encode(Ack(re="x")), 3)
    metrics.sent(encode(Ack(re="y")), 2)
    text = metrics.exposition().decode()
    assert 'tui_collab_messages_out_total{type="ack"} 5.0' in text
