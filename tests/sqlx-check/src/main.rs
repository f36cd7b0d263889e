//! sqlx against weft, as the DSQL article on sqlx uses it: a pool, inserts with bound
//! parameters, `query_as!` and `query!` checked at compile time against a running weft
//! (column types and nullability come from weft's answers to sqlx's describe), every type
//! weft stores, a write conflict (40001) and its retry. Needs DATABASE_URL, at build and at
//! run time, naming a weft with the tables of `tests/tests/drivers.rs`.

use sqlx::postgres::PgPoolOptions;

#[derive(Debug, Clone, PartialEq)]
struct Todo {
    id: String,
    name: String,
    description: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, PartialEq)]
struct Typed {
    id: i64,
    b: Option<bool>,
    i2: Option<i16>,
    i4: i32,
    f4: Option<f32>,
    f8: Option<f64>,
    n: Option<rust_decimal::Decimal>,
    t: Option<String>,
    vc: Option<String>,
    bp: Option<String>,
    d: Option<chrono::NaiveDate>,
    ts: Option<chrono::NaiveDateTime>,
    tz: Option<chrono::DateTime<chrono::Utc>>,
    u: Option<uuid::Uuid>,
    j: Option<serde_json::Value>,
    jb: Option<serde_json::Value>,
    by: Option<Vec<u8>>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;

    // The article's shape: insert with bound parameters, read back with query_as!.
    let now = chrono::Utc::now();
    let now = chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap();
    for i in 0..3 {
        let todo = Todo {
            id: uuid::Uuid::new_v4().to_string(),
            name: format!("todo {i}"),
            description: "write the tests".into(),
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO Todos (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&todo.id)
        .bind(&todo.name)
        .bind(&todo.description)
        .bind(todo.created_at)
        .bind(todo.updated_at)
        .execute(&pool)
        .await?;
    }
    let rows = sqlx::query_as!(
        Todo,
        r#"
        select id, name, description, created_at, updated_at from Todos order by name limit 10;
        "#,
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].name, "todo 0");
    assert_eq!(rows[2].created_at, now);

    // Every type, with the compile-time checked macros.
    let u = uuid::Uuid::parse_str("12345678-1234-5678-1234-567812345678")?;
    let d = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let ts = d.and_hms_micro_opt(1, 2, 3, 456789).unwrap();
    let jb = serde_json::json!({"b": [1, 2], "a": null});
    let tz = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    let n: rust_decimal::Decimal = "12345.67".parse()?;
    let j = serde_json::json!({"z": 1, "a": [true]});
    let id = sqlx::query_scalar!(
        "INSERT INTO typed (id, b, i2, i4, f4, f8, n, t, vc, bp, d, ts, tz, u, j, jb, by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
        7i64, true, 2i16, 4i32, 1.5f32, 2.5f64, n, "tëxt", "vc", "abc", d, ts, tz, u, j, jb,
        &[0u8, 1, 255][..]
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(id, 7);
    sqlx::query!("INSERT INTO typed (id, i4) VALUES ($1, $2)", 8i64, 0i32)
        .execute(&pool)
        .await?;
    let got = sqlx::query_as!(
        Typed,
        "SELECT id, b, i2, i4, f4, f8, n, t, vc, bp, d, ts, tz, u, j, jb, by FROM typed WHERE id = $1",
        7i64
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(
        got,
        Typed {
            id: 7,
            b: Some(true),
            i2: Some(2),
            i4: 4,
            f4: Some(1.5),
            f8: Some(2.5),
            n: Some(n),
            t: Some("tëxt".into()),
            vc: Some("vc".into()),
            bp: Some("abc".into()),
            d: Some(d),
            ts: Some(ts),
            tz: Some(tz),
            u: Some(u),
            j: Some(j),
            jb: Some(jb),
            by: Some(vec![0, 1, 255]),
        }
    );
    let nulls = sqlx::query_as!(
        Typed,
        "SELECT id, b, i2, i4, f4, f8, n, t, vc, bp, d, ts, tz, u, j, jb, by FROM typed WHERE id = $1",
        8i64
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!((nulls.b, nulls.t, nulls.jb), (None, None, None));
    let n = sqlx::query!("SELECT count(*) AS n FROM typed")
        .fetch_one(&pool)
        .await?
        .n;
    assert_eq!(n, Some(2));

    // A bad statement is an error with its SQLSTATE; the pool goes on.
    let e = sqlx::query("SELECT * FROM no_such_table")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        e.as_database_error().and_then(|d| d.code()).as_deref(),
        Some("42P01")
    );

    // A write conflict and its retry.
    let mut a = pool.begin().await?;
    let mut b = pool.begin().await?;
    sqlx::query!("UPDATE acct SET bal = bal - 10 WHERE id = 1")
        .execute(&mut *a)
        .await?;
    sqlx::query!("UPDATE acct SET bal = bal - 20 WHERE id = 1")
        .execute(&mut *b)
        .await?;
    a.commit().await?;
    let e = b.commit().await.unwrap_err();
    assert_eq!(
        e.as_database_error().and_then(|d| d.code()).as_deref(),
        Some("40001")
    );
    for attempt in 0.. {
        let mut t = pool.begin().await?;
        let r = async {
            sqlx::query!("UPDATE acct SET bal = bal - 20 WHERE id = 1")
                .execute(&mut *t)
                .await?;
            t.commit().await
        }
        .await;
        match r {
            Ok(()) => break,
            Err(e)
                if attempt < 5
                    && e.as_database_error().and_then(|d| d.code()).as_deref() == Some("40001") =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
    let bal = sqlx::query_scalar!("SELECT bal FROM acct WHERE id = 1")
        .fetch_one(&pool)
        .await?;
    assert_eq!(bal, Some(70));
    println!("sqlx ok");
    Ok(())
}
