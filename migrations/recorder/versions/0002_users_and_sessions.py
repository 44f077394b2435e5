"""Users and signed-in sessions of the recorder

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 10:00:00

``recorder_users`` holds the accounts made with ``taperoom recorder user add``
(Argon2id hashes, never passwords); ``recorder_auth_sessions`` the browsers
signed in to them (the SHA-256 of each cookie token, its CSRF token and end).
The tables are named after the app, so the library and the recorder can share
one PostgreSQL database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recorder_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recorder_users')),
    sa.UniqueConstraint('name', name=op.f('uq_recorder_users_name'))
    )
    op.create_table('recorder_auth_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['recorder_users.id'], name=op.f('fk_recorder_auth_sessions_user_id_recorder_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recorder_auth_sessions'))
    )
    with op.batch_alter_table('recorder_auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recorder_auth_sessions_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recorder_auth_sessions_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recorder_auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recorder_auth_sessions_expires_at'))
        batch_op.drop_index(batch_op.f('ix_recorder_auth_sessions_user_id'))
    op.drop_table('recorder_auth_sessions')
    op.drop_table('recorder_users')
