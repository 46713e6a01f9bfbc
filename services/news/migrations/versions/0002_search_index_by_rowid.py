"""SQLite's search index keyed by an integer the articles keep, maintained by triggers.

The FTS5 table `article_search` had an unindexed `article_id` column, so replacing one article's
entry scanned the whole index. It becomes an external-content index over `articles` whose rowid
is `articles.search_rowid`: a stable integer (an implicit rowid may change on VACUUM), the
article's rowid when it was first indexed. A new article is indexed by the code that inserts
it (one INSERT ... SELECT per batch on import: FTS5 writes several times faster that way than
from a trigger); triggers keep the index in step with every edit and delete, which need the old
text to take it out. PostgreSQL is unchanged.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKENIZE = "tokenize = 'porter unicode61 remove_diacritics 0'"
_DELETE = (
    "INSERT INTO article_search(article_search, rowid, title, summary, body_text) "
    "VALUES ('delete', old.search_rowid, old.title, old.summary, old.body_text);"
)
_INSERT = (
    "INSERT INTO article_search(rowid, title, summary, body_text) "
    "VALUES ({rowid}, new.title, new.summary, new.body_text);"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("ALTER TABLE articles ADD COLUMN search_rowid INTEGER")
    op.execute("UPDATE articles SET search_rowid = rowid")
    # Covering: a search reads what it filters and sorts on from here, never from the rows,
    # whose long bodies SQLite keeps on overflow pages.
    op.execute(
        "CREATE INDEX ix_articles_search_rowid "
        "ON articles (search_rowid, status, published_at, created_at, id)"
    )
    op.execute("DROP TABLE article_search")
    op.execute(
        "CREATE VIRTUAL TABLE article_search USING fts5(title, summary, body_text, "
        f"content = 'articles', content_rowid = 'search_rowid', {TOKENIZE})"
    )
    op.execute("INSERT INTO article_search(article_search) VALUES ('rebuild')")
    op.execute(
        "CREATE TRIGGER articles_search_update AFTER UPDATE OF title, summary, body_text "
        "ON articles WHEN old.search_rowid IS NOT NULL BEGIN " + _DELETE + " " + _INSERT.format(rowid="new.search_rowid") + " END"
    )
    op.execute("CREATE TRIGGER articles_search_delete AFTER DELETE ON articles "
        "WHEN old.search_rowid IS NOT NULL BEGIN " + _DELETE + " END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("update", "delete"):
        op.execute(f"DROP TRIGGER articles_search_{trigger}")
    op.execute("DROP TABLE article_search")
    op.execute("DROP INDEX ix_articles_search_rowid")
    op.execute("ALTER TABLE articles DROP COLUMN search_rowid")
    op.execute(
        "CREATE VIRTUAL TABLE article_search USING fts5("
        f"article_id UNINDEXED, title, summary, body, {TOKENIZE})"
    )
    op.execute(
        "INSERT INTO article_search(article_id, title, summary, body) "
        "SELECT id, title, summary, body_text FROM articles"
    )
