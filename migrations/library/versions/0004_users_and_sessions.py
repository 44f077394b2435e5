"""Users and signed-in sessions of the library

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00

``library_users`` holds the accounts made with ``taperoom library user add``
(Argon2id hashes, never passwords); ``library_auth_sessions`` the browsers
signed in to them (the SHA-256 of each cookie token, its CSRF token and end).
The tables are named after the app, so the library and the recorder can share
one PostgreSQL database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('library_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_library_users')),
    sa.UniqueConstraint('name', name=op.f('uq_library_users_name'))
    )
    op.create_table('library_auth_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['library_users.id'], name=op.f('fk_library_auth_sessions_user_id_library_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_library_auth_sessions'))
    )
    with op.batch_alter_table('library_auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_library_auth_sessions_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_library_auth_sessions_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('library_auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_library_auth_sessions_expires_at'))
        batch_op.drop_index(batch_op.f('ix_library_auth_sessions_user_id'))
    op.drop_table('library_auth_sessions')
    op.drop_table('library_users')
