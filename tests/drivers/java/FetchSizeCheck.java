// JDBC's fetch size against weft: a 10-million-row result read through a portal that the
// server suspends every `fetchSize` rows, in constant client memory (the JVM runs with a
// small heap; holding the result would exhaust it). Usage: java FetchSizeCheck.java <port> <rows>
import java.sql.*;

public class FetchSizeCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/postgres";
        long rows = Long.parseLong(args[1]);
        try (Connection c = DriverManager.getConnection(url, "postgres", "")) {
            // A fetch size applies inside a transaction (the portal lives until its end).
            c.setAutoCommit(false);
            try (PreparedStatement st = c.prepareStatement(
                    "SELECT g, 'row ' || g AS label FROM generate_series(1, " + rows + ") g WHERE g > ?")) {
                st.setFetchSize(10000);
                st.setLong(1, 0);
                long n = 0, sum = 0, heapMax = 0;
                Runtime rt = Runtime.getRuntime();
                try (ResultSet rs = st.executeQuery()) {
                    while (rs.next()) {
                        n++;
                        long g = rs.getLong(1);
                        sum += g;
                        if (!rs.getString(2).equals("row " + g)) {
                            throw new AssertionError("row " + n + ": " + rs.getString(2));
                        }
                        if (n % 100000 == 0) {
                            heapMax = Math.max(heapMax, rt.totalMemory() - rt.freeMemory());
                        }
                    }
                }
                if (n != rows || sum != rows * (rows + 1) / 2) {
                    throw new AssertionError("read " + n + " rows summing to " + sum);
                }
                System.out.println("read " + n + " rows; client heap at most " + (heapMax >> 20) + " MiB");
            }
            c.commit();
        }
        System.out.println("fetch size ok");
    }
}
