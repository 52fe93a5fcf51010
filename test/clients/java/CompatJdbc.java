import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * pgjdbc's connection setup through dsql-proxy: compiled and run by test/clients/compat-orm.test.ts.
 * pgjdbc (extended protocol throughout) sends DateStyle, TimeZone, extra_float_digits and
 * application_name as startup parameters; Connection.setTransactionIsolation sends SET SESSION
 * CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL ..., getTransactionIsolation SHOW TRANSACTION
 * ISOLATION LEVEL; setReadOnly(true) with autocommit off makes its next BEGIN a BEGIN READ ONLY.
 *
 * Usage: java -cp postgresql.jar:DIR CompatJdbc JDBC_URL USER PASSWORD
 * Prints one JSON object with what it saw; the TypeScript test asserts on it.
 */
public final class CompatJdbc {
  private static String q(String s) {
    if (s == null) return "null";
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n").replace("\t", "\\t") + "\"";
  }

  private static String one(Connection conn, String sql) throws SQLException {
    try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    List<String> out = new ArrayList<>();
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      out.add("\"datestyle\":" + q(one(conn, "show DateStyle")));
      out.add("\"extra_float_digits\":" + q(one(conn, "show extra_float_digits")));
      out.add("\"application_name\":" + q(one(conn, "show application_name")));
      conn.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
      out.add("\"isolation\":" + conn.getTransactionIsolation());
      out.add("\"isolation_shown\":" + q(one(conn, "show transaction_isolation")));
      String refused = null;
      String refusedMessage = null;
      try {
        conn.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
      } catch (SQLException e) {
        refused = e.getSQLState();
        refusedMessage = e.getMessage();
      }
      out.add("\"serializable_sqlstate\":" + q(refused));
      out.add("\"serializable_message\":" + q(refusedMessage));
      conn.setAutoCommit(false);
      conn.setReadOnly(true);
      String readOnly = null;
      try (Statement st = conn.createStatement()) {
        st.executeUpdate("create table compat_jdbc_ro (id int)");
      } catch (SQLException e) {
        readOnly = e.getSQLState();
      }
      conn.rollback();
      conn.setReadOnly(false);
      conn.setAutoCommit(true);
      out.add("\"read_only_sqlstate\":" + q(readOnly));
      out.add("\"usable\":" + one(conn, "select 41 + 1"));
    }
    System.out.println("{" + String.join(",", out) + "}");
  }
}
