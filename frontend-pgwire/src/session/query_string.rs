//! A query string of the simple protocol: its statements run one after the other; the
//! statements of a string with several share one implicit transaction, committed at its
//! end, as in PostgreSQL. The wire layer sends each reply as it comes; [`Core::query`]
//! runs a whole string for an embedded caller (the whole-system simulation).

use datafusion::sql::sqlparser::ast::Statement;

use crate::error::{SqlError, SqlResult};
use crate::session::machine::{Core, Reply, State};
use crate::sql::outcome::Notice;
use crate::sql::prepare::parse;

impl Core {
    /// The statements of `sql`. An error (a syntax error, or COPY FROM STDIN among other
    /// statements) fails the session's transaction block, as the statement would have.
    pub fn parse_query_string(&self, st: &mut State, sql: &str) -> SqlResult<Vec<Statement>> {
        let stmts = parse(sql).and_then(|stmts| {
            if stmts.len() > 1
                && stmts
                    .iter()
                    .any(|s| matches!(s, Statement::Copy { to: false, .. }))
            {
                return Err(SqlError::unsupported(
                    "COPY FROM STDIN must be the only statement in its query string",
                ));
            }
            Ok(stmts)
        });
        if stmts.is_err() {
            self.fail(st);
        }
        stmts
    }

    /// Runs one statement of a query string of `count` statements.
    pub async fn run_in_query_string(
        &self,
        st: &mut State,
        stmt: Statement,
        count: usize,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Reply> {
        self.run_counted(st, stmt, None, count <= 1, notices).await
    }

    /// Ends a query string of `count` statements: the implicit transaction of a string
    /// with several commits unless one failed; an implicit transaction ends (unless a
    /// COPY FROM STDIN now waits for its data).
    pub async fn end_query_string(
        &self,
        st: &mut State,
        count: usize,
        failed: bool,
    ) -> SqlResult<()> {
        let mut result = Ok(());
        if count > 1 && !failed && st.txn.as_ref().is_some_and(|t| !t.explicit) {
            let t = st.txn.take().expect("implicit transaction");
            result = self.commit(t).await;
        }
        if st.copy.is_none() && st.txn.as_ref().is_some_and(|t| !t.explicit) {
            st.txn = None;
        }
        result
    }

    /// Runs the query string `sql` as the simple protocol would, for an embedded caller:
    /// every statement's reply, or the first error (COPY FROM STDIN is refused: there is
    /// no client to send the data).
    pub async fn query(&self, sql: &str) -> SqlResult<Vec<Reply>> {
        let mut st = self.state.lock().await;
        let stmts = self.parse_query_string(&mut st, sql)?;
        if stmts
            .iter()
            .any(|s| matches!(s, Statement::Copy { to: false, .. }))
        {
            return Err(SqlError::unsupported(
                "COPY FROM STDIN needs a client connection",
            ));
        }
        let count = stmts.len();
        let mut replies = Vec::with_capacity(count);
        let mut first_error = None;
        for stmt in stmts {
            let mut notices = Vec::new();
            match self
                .run_in_query_string(&mut st, stmt, count, &mut notices)
                .await
            {
                // An embedded caller gets every row at once.
                Ok(Reply::Outcome(o)) => match o.materialized().await {
                    Ok(o) => replies.push(Reply::Outcome(o)),
                    Err(e) => {
                        self.fail(&mut st);
                        first_error = Some(e);
                        break;
                    }
                },
                Ok(reply) => replies.push(reply),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        let end = self
            .end_query_string(&mut st, count, first_error.is_some())
            .await;
        match first_error {
            Some(e) => Err(e),
            None => end.map(|()| replies),
        }
    }
}
