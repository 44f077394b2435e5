"""All SQL of the library database, one module per resource.

Services call these functions with a SQLAlchemy ``Session``; nothing else in the
library app builds SQL.
"""

from __future__ import annotations
