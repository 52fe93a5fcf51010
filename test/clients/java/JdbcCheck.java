import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * pgjdbc through dsql-proxy: compiled and run by test/clients/drivers.test.ts.
 *
 * Usage: java -cp postgresql.jar:DIR JdbcCheck JDBC_URL USER PASSWORD TABLE
 * Prints one JSON object with what it saw; the TypeScript test asserts on it.
 */
public final class JdbcCheck {
  private static String q(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n").replace("\t", "\\t") + "\"";
  }

  public static void main(String[] args) throws Exception {
    String url = args[0];
    String table = args[3];
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    // Server-side prepared statements from the first execution on.
    props.setProperty("prepareThreshold", "1");
    List<String> out = new ArrayList<>();
    try (Connection conn = DriverManager.getConnection(url, props)) {
      DatabaseMetaData md = conn.getMetaData();
      out.add("\"driver\":" + q(md.getDriverVersion()));
      out.add("\"server\":" + q(md.getDatabaseProductVersion()));
      try (Statement st = conn.createStatement()) {
        try (ResultSet rs = st.executeQuery("select current_user")) {
          rs.next();
          out.add("\"user\":" + q(rs.getString(1)));
        }
        st.execute("drop table if exists " + table);
        st.execute("create table " + table + " (id int primary key, name text not null, amount bigint)");
      }

      // Batch insert in a transaction, committed.
      conn.setAutoCommit(false);
      try (PreparedStatement ps = conn.prepareStatement("insert into " + table + " values (?, ?, ?)")) {
        for (int i = 1; i <= 500; i++) {
          ps.setInt(1, i);
          ps.setString(2, "name " + i);
          ps.setLong(3, i * 10L);
          ps.addBatch();
        }
        int[] counts = ps.executeBatch();
        out.add("\"batch\":" + counts.length);
      }
      conn.commit();

      // A transaction that is rolled back.
      try (Statement st = conn.createStatement()) {
        st.executeUpdate("delete from " + table + " where id > 100");
      }
      conn.rollback();

      // A failing batch rolls back as a whole.
      boolean batchFailed = false;
      try (PreparedStatement ps = conn.prepareStatement("insert into " + table + " values (?, ?, ?)")) {
        ps.setInt(1, 501);
        ps.setString(2, "ok");
        ps.setLong(3, 1);
        ps.addBatch();
        ps.setInt(1, 1);
        ps.setString(2, "duplicate");
        ps.setLong(3, 1);
        ps.addBatch();
        ps.executeBatch();
      } catch (BatchUpdateException e) {
        batchFailed = "23505".equals(e.getNextException() != null ? e.getNextException().getSQLState() : e.getSQLState());
      }
      conn.rollback();
      out.add("\"duplicate_batch_failed\":" + batchFailed);
      conn.setAutoCommit(true);

      // One PreparedStatement reused: with prepareThreshold=1 it is a named server-side statement.
      long sum = 0;
      try (PreparedStatement ps = conn.prepareStatement("select amount from " + table + " where id = ?")) {
        for (int i = 1; i <= 50; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            sum += rs.getLong(1);
          }
        }
        out.add("\"server_prepared\":" + ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare());
      }
      out.add("\"prepared_sum\":" + sum);
      try (Statement st = conn.createStatement();
          ResultSet rs = st.executeQuery(
              "select count(*) from pg_prepared_statements where statement = 'select amount from " + table + " where id = $1'")) {
        rs.next();
        out.add("\"pg_prepared_statements\":" + rs.getInt(1));
      }
      try (Statement st = conn.createStatement();
          ResultSet rs = st.executeQuery("select count(*), sum(amount) from " + table)) {
        rs.next();
        out.add("\"count\":" + rs.getInt(1));
        out.add("\"sum\":" + rs.getLong(2));
      }

      // Metadata: getTables runs catalog queries through the proxy.
      List<String> tables = new ArrayList<>();
      try (ResultSet rs = md.getTables(null, "public", table, new String[] {"TABLE"})) {
        while (rs.next()) tables.add(q(rs.getString("TABLE_NAME")));
      }
      out.add("\"tables\":[" + String.join(",", tables) + "]");
      List<String> cols = new ArrayList<>();
      try (ResultSet rs = md.getColumns(null, "public", table, null)) {
        while (rs.next()) cols.add(q(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME")));
      }
      out.add("\"columns\":[" + String.join(",", cols) + "]");

      // An error carries its SQLSTATE and the connection stays usable.
      String state = "";
      try (Statement st = conn.createStatement()) {
        st.executeQuery("select 1/0");
      } catch (SQLException e) {
        state = e.getSQLState();
      }
      out.add("\"error_sqlstate\":" + q(state));
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("select 42")) {
        rs.next();
        out.add("\"after_error\":" + rs.getInt(1));
      }
    }
    System.out.println("{" + String.join(",", out) + "}");
  }
}
