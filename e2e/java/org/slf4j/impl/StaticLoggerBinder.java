// A minimal SLF4J 1.7 binding for StromE2E: the Java client's log lines go to stderr at
// the level named by STROM_E2E_JAVA_LOG (trace|debug|info|warn|error|off; default warn),
// so a failing test shows why the client gave up. slf4j-api 1.7.36 ships no binding.
package org.slf4j.impl;

import java.time.LocalTime;

import org.slf4j.ILoggerFactory;
import org.slf4j.Logger;
import org.slf4j.helpers.FormattingTuple;
import org.slf4j.helpers.MarkerIgnoringBase;
import org.slf4j.helpers.MessageFormatter;
import org.slf4j.spi.LoggerFactoryBinder;

public final class StaticLoggerBinder implements LoggerFactoryBinder {
    public static String REQUESTED_API_VERSION = "1.7.36";
    private static final StaticLoggerBinder SINGLETON = new StaticLoggerBinder();
    private final ILoggerFactory factory = StderrLogger::new;

    public static StaticLoggerBinder getSingleton() { return SINGLETON; }
    @Override public ILoggerFactory getLoggerFactory() { return factory; }
    @Override public String getLoggerFactoryClassStr() { return StderrLogger.class.getName(); }

    static final int LEVEL = level(System.getenv("STROM_E2E_JAVA_LOG"));

    static int level(String s) {
        if (s == null) return 3;
        switch (s.toLowerCase()) {
            case "trace": return 0;
            case "debug": return 1;
            case "info": return 2;
            case "warn": return 3;
            case "error": return 4;
            default: return 5;
        }
    }

    static final class StderrLogger extends MarkerIgnoringBase {
        private static final long serialVersionUID = 1L;
        private static final String[] NAMES = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};

        StderrLogger(String name) { this.name = name; }

        private void log(int lvl, FormattingTuple t) {
            if (lvl < LEVEL) return;
            String n = name.substring(name.lastIndexOf('.') + 1);
            System.err.println("[java " + LocalTime.now() + " " + NAMES[lvl] + " " + n + "] " + t.getMessage());
            if (t.getThrowable() != null) t.getThrowable().printStackTrace();
        }

        private void log(int lvl, String msg, Throwable th) {
            log(lvl, new FormattingTuple(msg, null, th));
        }

        public boolean isTraceEnabled() { return LEVEL <= 0; }
        public void trace(String m) { log(0, m, null); }
        public void trace(String f, Object a) { log(0, MessageFormatter.format(f, a)); }
        public void trace(String f, Object a, Object b) { log(0, MessageFormatter.format(f, a, b)); }
        public void trace(String f, Object... a) { log(0, MessageFormatter.arrayFormat(f, a)); }
        public void trace(String m, Throwable t) { log(0, m, t); }

        public boolean isDebugEnabled() { return LEVEL <= 1; }
        public void debug(String m) { log(1, m, null); }
        public void debug(String f, Object a) { log(1, MessageFormatter.format(f, a)); }
        public void debug(String f, Object a, Object b) { log(1, MessageFormatter.format(f, a, b)); }
        public void debug(String f, Object... a) { log(1, MessageFormatter.arrayFormat(f, a)); }
        public void debug(String m, Throwable t) { log(1, m, t); }

        public boolean isInfoEnabled() { return LEVEL <= 2; }
        public void info(String m) { log(2, m, null); }
        public void info(String f, Object a) { log(2, MessageFormatter.format(f, a)); }
        public void info(String f, Object a, Object b) { log(2, MessageFormatter.format(f, a, b)); }
        public void info(String f, Object... a) { log(2, MessageFormatter.arrayFormat(f, a)); }
        public void info(String m, Throwable t) { log(2, m, t); }

        public boolean isWarnEnabled() { return LEVEL <= 3; }
        public void warn(String m) { log(3, m, null); }
        public void warn(String f, Object a) { log(3, MessageFormatter.format(f, a)); }
        public void warn(String f, Object a, Object b) { log(3, MessageFormatter.format(f, a, b)); }
        public void warn(String f, Object... a) { log(3, MessageFormatter.arrayFormat(f, a)); }
        public void warn(String m, Throwable t) { log(3, m, t); }

        public boolean isErrorEnabled() { return LEVEL <= 4; }
        public void error(String m) { log(4, m, null); }
        public void error(String f, Object a) { log(4, MessageFormatter.format(f, a)); }
        public void error(String f, Object a, Object b) { log(4, MessageFormatter.format(f, a, b)); }
        public void error(String f, Object... a) { log(4, MessageFormatter.arrayFormat(f, a)); }
        public void error(String m, Throwable t) { log(4, m, t); }
    }
}
