from __future__ import annotations

from services.news.sanitise import plain_text, sanitise_html


def test_active_content_is_removed_and_formatting_kept() -> None:
    safe = sanitise_html(
        '<h2>Title</h2><p onclick="x()">Fish &amp; <b>chips</b><script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">bad</a> <a href="https://www.nato.int">good</a>'
        '<style>p{}</style><iframe src="https://evil.example"></iframe>'
    )
    assert "<h2>Title</h2>" in safe
    assert "<p>Fish &amp; <b>chips</b></p>" in safe
    assert "script" not in safe
    assert "alert" not in safe
    assert "onclick" not in safe
    assert "iframe" not in safe
    assert "style" not in safe
    assert 'href="https://www.nato.int"' in safe
    assert 'rel="noopener noreferrer"' in safe


def test_plain_text_reads_like_the_page() -> None:
    text = plain_text(sanitise_html("<h2>Profound concerns</h2><p>A &amp; B</p><p>C<br>D</p>"))
    assert text == "Profound concerns\nA & B\nC\nD"
