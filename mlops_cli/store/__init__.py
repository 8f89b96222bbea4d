"""The data DB: every table of mlops and every statement that reads or writes one.

``tables`` declares them; ``db`` opens the database (schema checked); ``frames`` is the bulk I/O
(``COPY`` on PostgreSQL, one ``executemany`` elsewhere); ``listings`` the rows as received and
cleaned; ``rounds`` the batch log, the answer bodies and the writer-lock fence; ``meta`` the
facts about the dataset; ``promotions`` the champion's moves; ``locking`` the one-writer lock.
Nothing outside this package imports SQLAlchemy to run a statement (tests/test_layout.py).
"""
