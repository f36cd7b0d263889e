// pgjdbc against weft: a table of every type weft stores, inserts through PreparedStatement
// (past the threshold at which pgjdbc switches to named server-side statements), reads back
// through the typed getters, DatabaseMetaData (what GUI tools call), batches, a write
// conflict (40001) and its retry, and an error that leaves the connection usable.
// Usage: java -cp postgresql.jar PgjdbcCheck.java <port>
import java.math.BigDecimal;
import java.sql.*;
import java.time.*;
import java.util.*;

public class PgjdbcCheck {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static void eq(Object want, Object got, String what) {
        if (!Objects.equals(want, got)) throw new AssertionError(what + ": want " + want + ", got " + got);
    }

    static String state(SQLException e) {
        return e.getSQLState();
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/postgres?user=postgres&sslmode=disable";
        try (Connection c = DriverManager.getConnection(url)) {
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS jdrv");
                s.execute("CREATE TABLE jdrv (id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer,"
                        + " f4 real, f8 double precision, n numeric(10,2), t text, vc varchar(20), bp char(3),"
                        + " by bytea, d date, ts timestamp, tz timestamptz, u uuid, jb jsonb)");
            }
            String ins = "INSERT INTO jdrv (id,b,i2,i4,f4,f8,n,t,vc,bp,by,d,ts,tz,u,jb) "
                    + "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?::jsonb)";
            UUID uuid = UUID.fromString("12345678-1234-5678-1234-567812345678");
            try (PreparedStatement p = c.prepareStatement(ins)) {
                // Ten executions: pgjdbc moves to a named server-side statement after five.
                for (long id = 1; id <= 10; id++) {
                    p.setLong(1, id);
                    p.setBoolean(2, id % 2 == 0);
                    p.setShort(3, (short) id);
                    p.setInt(4, (int) id * 1000);
                    p.setFloat(5, 1.5f);
                    p.setDouble(6, 2.25);
                    p.setBigDecimal(7, new BigDecimal("12.34"));
                    p.setString(8, "tëxt " + id);
                    p.setString(9, "vc");
                    p.setString(10, "abc");
                    p.setBytes(11, new byte[] {0, 1, (byte) 255});
                    p.setObject(12, LocalDate.of(2024, 1, 2));
                    p.setObject(13, LocalDateTime.of(2024, 1, 2, 3, 4, 5, 123456000));
                    p.setObject(14, OffsetDateTime.of(2024, 1, 2, 3, 4, 5, 0, ZoneOffset.UTC));
                    p.setObject(15, uuid);
                    p.setString(16, "{\"b\": 1, \"a\": [true]}");
                    eq(1, p.executeUpdate(), "insert count");
                }
            }
            try (PreparedStatement p = c.prepareStatement(ins)) {
                p.setLong(1, 11);
                for (int i = 2; i <= 15; i++) p.setNull(i, Types.NULL);
                p.setNull(16, Types.VARCHAR);
                p.executeUpdate();
            }
            try (PreparedStatement q = c.prepareStatement("SELECT * FROM jdrv WHERE id = ?")) {
                for (int round = 0; round < 7; round++) {
                    q.setLong(1, 4);
                    try (ResultSet r = q.executeQuery()) {
                        check(r.next(), "a row");
                        eq(4L, r.getLong("id"), "id");
                        eq(true, r.getBoolean("b"), "b");
                        eq((short) 4, r.getShort("i2"), "i2");
                        eq(4000, r.getInt("i4"), "i4");
                        eq(1.5f, r.getFloat("f4"), "f4");
                        eq(2.25, r.getDouble("f8"), "f8");
                        eq(new BigDecimal("12.34"), r.getBigDecimal("n"), "n");
                        eq("tëxt 4", r.getString("t"), "t");
                        eq("vc", r.getString("vc"), "vc");
                        eq("abc", r.getString("bp"), "bp");
                        check(Arrays.equals(new byte[] {0, 1, (byte) 255}, r.getBytes("by")), "bytea");
                        eq(LocalDate.of(2024, 1, 2), r.getObject("d", LocalDate.class), "date");
                        eq(LocalDateTime.of(2024, 1, 2, 3, 4, 5, 123456000), r.getObject("ts", LocalDateTime.class), "timestamp");
                        eq(OffsetDateTime.of(2024, 1, 2, 3, 4, 5, 0, ZoneOffset.UTC).toInstant(),
                                r.getObject("tz", OffsetDateTime.class).toInstant(), "timestamptz");
                        eq(uuid, r.getObject("u", UUID.class), "uuid");
                        eq("{\"a\": [true], \"b\": 1}", r.getString("jb"), "jsonb");
                        check(!r.next(), "one row");
                    }
                }
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT * FROM jdrv WHERE id = 11")) {
                check(r.next(), "the row of NULLs");
                for (int i = 2; i <= 16; i++) {
                    r.getObject(i);
                    check(r.wasNull(), "column " + i + " is NULL");
                }
            }
            // Result metadata: names and types as PostgreSQL describes them.
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT id, t, n, u FROM jdrv LIMIT 1")) {
                ResultSetMetaData m = r.getMetaData();
                eq("id", m.getColumnName(1), "column name");
                eq("int8", m.getColumnTypeName(1), "int8");
                eq("text", m.getColumnTypeName(2), "text");
                eq("numeric", m.getColumnTypeName(3), "numeric");
                eq("uuid", m.getColumnTypeName(4), "uuid");
            }
            // DatabaseMetaData: what GUI and migration tools call.
            DatabaseMetaData md = c.getMetaData();
            check(md.getDatabaseProductVersion().startsWith("15"), "version " + md.getDatabaseProductVersion());
            try (ResultSet r = md.getTables(null, "public", "jdrv", new String[] {"TABLE"})) {
                check(r.next(), "getTables finds jdrv");
                eq("jdrv", r.getString("TABLE_NAME"), "table name");
            }
            List<String> cols = new ArrayList<>();
            try (ResultSet r = md.getColumns(null, "public", "jdrv", null)) {
                while (r.next()) cols.add(r.getString("COLUMN_NAME") + ":" + r.getString("TYPE_NAME"));
            }
            eq(16, cols.size(), "getColumns " + cols);
            eq("id:int8", cols.get(0), "first column");
            eq("jb:jsonb", cols.get(15), "last column");
            try (ResultSet r = md.getPrimaryKeys(null, "public", "jdrv")) {
                check(r.next(), "getPrimaryKeys");
                eq("id", r.getString("COLUMN_NAME"), "primary key column");
            }
            // A batch.
            try (PreparedStatement p = c.prepareStatement("INSERT INTO jdrv (id, t) VALUES (?, ?)")) {
                for (long id = 100; id < 150; id++) {
                    p.setLong(1, id);
                    p.setString(2, "batch");
                    p.addBatch();
                }
                int[] counts = p.executeBatch();
                eq(50, counts.length, "batch size");
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM jdrv WHERE t = 'batch'")) {
                r.next();
                eq(50L, r.getLong(1), "batched rows");
            }
            // An error leaves the connection usable.
            try (Statement s = c.createStatement()) {
                s.executeQuery("SELECT * FROM no_such_table");
                throw new AssertionError("must fail");
            } catch (SQLException e) {
                eq("42P01", state(e), "undefined table");
            }
            // A write conflict and its retry.
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE jacct (id int PRIMARY KEY, bal int)");
                s.execute("INSERT INTO jacct VALUES (1, 100)");
            }
            try (Connection a = DriverManager.getConnection(url); Connection b = DriverManager.getConnection(url)) {
                a.setAutoCommit(false);
                b.setAutoCommit(false);
                a.createStatement().executeUpdate("UPDATE jacct SET bal = bal - 10 WHERE id = 1");
                b.createStatement().executeUpdate("UPDATE jacct SET bal = bal - 20 WHERE id = 1");
                a.commit();
                try {
                    b.commit();
                    throw new AssertionError("the second commit must fail");
                } catch (SQLException e) {
                    eq("40001", state(e), "conflict");
                }
                for (int attempt = 0; ; attempt++) {
                    try {
                        b.createStatement().executeUpdate("UPDATE jacct SET bal = bal - 20 WHERE id = 1");
                        b.commit();
                        break;
                    } catch (SQLException e) {
                        b.rollback();
                        if (!"40001".equals(state(e)) || attempt > 5) throw e;
                    }
                }
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT bal FROM jacct WHERE id = 1")) {
                r.next();
                eq(70, r.getInt(1), "balance");
            }
        }
        System.out.println("pgjdbc ok");
    }
}
