from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kb_index import store


async def test_versions_are_announced_per_index_dir(db: async_sessionmaker[AsyncSession], tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with db() as session:
        assert await store.current_version(session=session, index_dir=tmp_path / "a") is None
        for v in (1, 2):
            await store.record_version(
                session=session, index_dir=tmp_path / "a", version=v, articles=3, rows=9, model="m"
            )
        await store.record_version(
            session=session, index_dir=tmp_path / "b", version=7, articles=3, rows=9, model="m"
        )
    async with db() as session:
        assert await store.current_version(session=session, index_dir=tmp_path / "a") == 2
        assert await store.current_version(session=session, index_dir=tmp_path / "b") == 7
