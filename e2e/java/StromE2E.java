// The Java Kafka client (kafka-clients 3.9.1) as a command-line tool for the e2e tests.
//
// Every command prints JSON objects, one per line, on stdout; diagnostics go to stderr.
// Exit codes: 0 ok, 2 usage error, 3 the broker answered with a Kafka error (printed as
// {"error": "<Errors enum name>", "exception": ..., "message": ...}), 1 anything else.
//
//   produce  --bootstrap B --topic T [--compression none|gzip|snappy|lz4|zstd]
//            [--idempotent true|false] [--acks all|1|0] [--linger-ms N]
//            [--producer-config k=v]... (--input FILE|- [--sync true] | --count N [--value-size S]
//            [--partition P] [--keys K] [--interval-ms N])
//       Input lines (tab separated): partition timestamp key value headers, where "-"
//       means null/unset, key and value are base64, headers is "" or a comma separated
//       list of base64(name):base64(value) ("-" as the value = null).
//       Prints one line per record as its ack arrives:
//       {"i":..,"partition":..,"offset":..,"timestamp":..} or {"i":..,"error":..}, then
//       {"done":true,"acked":N,"failed":M}.
//   consume  --bootstrap B --topic T [--partition P]... (default: all partitions)
//            [--from beginning|end|offset:N|timestamp:T] [--max N] [--until-end true]
//            [--timeout-ms N] [--consumer-config k=v]...
//       Manual assign, no group.id, no commits. Prints {"positions":{p:offset}} after
//       seeking, then one line per record {"partition","offset","timestamp",
//       "timestamp_type","key","value","headers":[[name,value],..]} (base64, null
//       kept), then {"done":true,"count":N,"end_offsets":{p:offset}}.
//   offsets  --bootstrap B --topic T --partition P --spec earliest|latest|timestamp:T
//       Consumer beginningOffsets/endOffsets/offsetsForTimes: {"offset":..,"timestamp":..}.
//   admin create-topic --name T [--partitions N] [--replication-factor R]
//                      [--config k=v]... [--validate-only true]
//   admin delete-topic --name T
//   admin list-topics
//   admin describe-topic --name T
//   admin describe-configs --name T [--type topic|broker]
//   admin alter-configs --name T [--type topic|broker] [--set k=v]... [--delete k]...
//                       [--append k=v]... [--subtract k=v]... [--validate-only true]
//   admin create-partitions --name T --count N [--validate-only true]
//   admin describe-cluster
//   admin describe-quorum       (DescribeQuorum: leader_id, leader_epoch, high_watermark,
//                                voters/observers [{id, log_end_offset}])
//   admin list-offsets --name T --partition P --spec earliest|latest|max-timestamp|timestamp:T
// All commands take --bootstrap B; admin commands also --timeout-ms (default 30000).

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class StromE2E {

    static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

    // ---------------------------------------------------------------- arguments

    static final class Args {
        final Map<String, List<String>> values = new HashMap<>();
        final List<String> positional = new ArrayList<>();

        Args(String[] argv, int from) {
            for (int i = from; i < argv.length; i++) {
                String a = argv[i];
                if (a.startsWith("--")) {
                    if (i + 1 >= argv.length) throw new Usage("missing value for " + a);
                    values.computeIfAbsent(a.substring(2), k -> new ArrayList<>()).add(argv[++i]);
                } else {
                    positional.add(a);
                }
            }
        }

        String get(String name, String dflt) {
            List<String> v = values.get(name);
            return v == null ? dflt : v.get(v.size() - 1);
        }

        String need(String name) {
            String v = get(name, null);
            if (v == null) throw new Usage("--" + name + " is required");
            return v;
        }

        List<String> all(String name) {
            return values.getOrDefault(name, Collections.emptyList());
        }

        Map<String, String> pairs(String name) {
            Map<String, String> m = new LinkedHashMap<>();
            for (String kv : all(name)) {
                int eq = kv.indexOf('=');
                if (eq < 0) throw new Usage("--" + name + " wants key=value, got " + kv);
                m.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
            return m;
        }
    }

    static final class Usage extends RuntimeException {
        Usage(String m) { super(m); }
    }

    // ---------------------------------------------------------------- JSON output

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static String b64(byte[] bytes) {
        return bytes == null ? "null" : q(Base64.getEncoder().encodeToString(bytes));
    }

    static byte[] unb64(String s) {
        return "-".equals(s) ? null : Base64.getDecoder().decode(s);
    }

    /** Builds one JSON object; values are raw JSON (use q() for strings). */
    static final class Json {
        final StringBuilder b = new StringBuilder("{");

        Json put(String k, Object rawJson) {
            if (b.length() > 1) b.append(',');
            b.append(q(k)).append(':').append(rawJson == null ? "null" : rawJson.toString());
            return this;
        }

        Json str(String k, String v) { return put(k, q(v)); }

        @Override public String toString() { return b.toString() + "}"; }
    }

    static String jsonList(Collection<?> items) {
        StringBuilder b = new StringBuilder("[");
        for (Object o : items) {
            if (b.length() > 1) b.append(',');
            b.append(o);
        }
        return b.append(']').toString();
    }

    static String intMap(Map<Integer, Long> m) {
        Json j = new Json();
        for (Map.Entry<Integer, Long> e : new TreeMap<>(m).entrySet()) j.put(String.valueOf(e.getKey()), e.getValue());
        return j.toString();
    }

    static Throwable unwrap(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof java.util.concurrent.CompletionException)
                && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    static Json errorJson(Throwable t) {
        t = unwrap(t);
        return new Json().str("error", Errors.forException(t).name())
                .str("exception", t.getClass().getSimpleName()).str("message", t.getMessage());
    }

    // ---------------------------------------------------------------- produce

    static int produce(Args a) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.need("bootstrap"));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, a.get("compression", "none"));
        p.put(ProducerConfig.ACKS_CONFIG, a.get("acks", "all"));
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, a.get("idempotent", "true"));
        p.put(ProducerConfig.LINGER_MS_CONFIG, a.get("linger-ms", "5"));
        p.putAll(a.pairs("producer-config"));
        String topic = a.need("topic");

        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            int i = 0;
            if (a.get("input", null) != null) {
                String in = a.get("input", "-");
                BufferedReader r = new BufferedReader(new InputStreamReader(
                        "-".equals(in) ? System.in : new FileInputStream(in), StandardCharsets.UTF_8));
                boolean sync = Boolean.parseBoolean(a.get("sync", "false"));
                String line;
                while ((line = r.readLine()) != null) {
                    if (line.isEmpty()) continue;
                    Future<RecordMetadata> f = send(producer, parseRecord(topic, line), i++, acked, failed);
                    futures.add(f);
                    if (sync) {  // one record per request: wait for its ack before the next
                        try { f.get(); } catch (ExecutionException ignored) { /* reported by the callback */ }
                    }
                }
            } else {
                long count = Long.parseLong(a.need("count"));
                int valueSize = Integer.parseInt(a.get("value-size", "0"));
                int keys = Integer.parseInt(a.get("keys", "0"));
                String part = a.get("partition", null);
                long interval = Long.parseLong(a.get("interval-ms", "0"));
                for (long n = 0; n < count; n++) {
                    byte[] key = keys > 0 ? ("k" + (n % keys)).getBytes(StandardCharsets.UTF_8) : null;
                    futures.add(send(producer, new ProducerRecord<>(topic,
                            part == null ? null : Integer.valueOf(part), key, generatedValue(n, valueSize)),
                            i++, acked, failed));
                    if (interval > 0) Thread.sleep(interval);
                }
            }
            producer.flush();
            for (Future<RecordMetadata> f : futures) {
                try { f.get(); } catch (ExecutionException ignored) { /* reported by the callback */ }
            }
        }
        OUT.println(new Json().put("done", true).put("acked", acked.get()).put("failed", failed.get()));
        return 0;
    }

    /** The value of generated record n: "v<n>" padded with '.' to size bytes. */
    static byte[] generatedValue(long n, int size) {
        byte[] head = ("v" + n).getBytes(StandardCharsets.UTF_8);
        if (size <= head.length) return head;
        byte[] v = new byte[size];
        java.util.Arrays.fill(v, (byte) '.');
        System.arraycopy(head, 0, v, 0, head.length);
        return v;
    }

    static ProducerRecord<byte[], byte[]> parseRecord(String topic, String line) {
        String[] f = line.split("\t", -1);
        if (f.length != 5) throw new Usage("input line needs 5 tab separated fields, got " + f.length);
        Integer partition = "-".equals(f[0]) ? null : Integer.valueOf(f[0]);
        Long ts = "-".equals(f[1]) ? null : Long.valueOf(f[1]);
        List<Header> headers = new ArrayList<>();
        if (!f[4].isEmpty()) {
            for (String h : f[4].split(",")) {
                int c = h.indexOf(':');
                String name = new String(Base64.getDecoder().decode(h.substring(0, c)), StandardCharsets.UTF_8);
                String v = h.substring(c + 1);
                headers.add(new RecordHeader(name, unb64(v)));
            }
        }
        return new ProducerRecord<>(topic, partition, ts, unb64(f[2]), unb64(f[3]), headers);
    }

    static Future<RecordMetadata> send(KafkaProducer<byte[], byte[]> producer, ProducerRecord<byte[], byte[]> rec,
                                       int i, AtomicLong acked, AtomicLong failed) {
        return producer.send(rec, (md, ex) -> {
            if (ex != null) {
                failed.incrementAndGet();
                OUT.println(errorJson(ex).put("i", i));
            } else {
                acked.incrementAndGet();
                OUT.println(new Json().put("i", i).put("partition", md.partition()).put("offset", md.offset())
                        .put("timestamp", md.timestamp()));
            }
        });
    }

    // ---------------------------------------------------------------- consume

    static KafkaConsumer<byte[], byte[]> consumer(Args a) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.need("bootstrap"));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.putAll(a.pairs("consumer-config"));
        return new KafkaConsumer<>(p);
    }

    static List<TopicPartition> partitions(KafkaConsumer<?, ?> c, Args a, String topic, long deadline)
            throws InterruptedException {
        List<TopicPartition> tps = new ArrayList<>();
        if (!a.all("partition").isEmpty()) {
            for (String s : a.all("partition")) tps.add(new TopicPartition(topic, Integer.parseInt(s)));
            return tps;
        }
        while (true) {
            List<PartitionInfo> infos = c.partitionsFor(topic, Duration.ofMillis(5000));
            if (infos != null && !infos.isEmpty()) {
                for (PartitionInfo pi : infos) tps.add(new TopicPartition(topic, pi.partition()));
                tps.sort((x, y) -> Integer.compare(x.partition(), y.partition()));
                return tps;
            }
            if (System.currentTimeMillis() > deadline) throw new IllegalStateException("no partitions for " + topic);
            Thread.sleep(100);
        }
    }

    static int consume(Args a) throws Exception {
        String topic = a.need("topic");
        long timeout = Long.parseLong(a.get("timeout-ms", "30000"));
        long max = Long.parseLong(a.get("max", String.valueOf(Long.MAX_VALUE)));
        boolean untilEnd = Boolean.parseBoolean(a.get("until-end", "false"));
        String from = a.get("from", "beginning");
        long deadline = System.currentTimeMillis() + timeout;
        try (KafkaConsumer<byte[], byte[]> c = consumer(a)) {
            List<TopicPartition> tps = partitions(c, a, topic, deadline);
            c.assign(tps);
            if (from.equals("beginning")) {
                c.seekToBeginning(tps);
            } else if (from.equals("end")) {
                c.seekToEnd(tps);
            } else if (from.startsWith("offset:")) {
                long off = Long.parseLong(from.substring(7));
                for (TopicPartition tp : tps) c.seek(tp, off);
            } else if (from.startsWith("timestamp:")) {
                long ts = Long.parseLong(from.substring(10));
                Map<TopicPartition, Long> q = new HashMap<>();
                for (TopicPartition tp : tps) q.put(tp, ts);
                Map<TopicPartition, OffsetAndTimestamp> found = c.offsetsForTimes(q, Duration.ofMillis(timeout));
                Map<TopicPartition, Long> ends = c.endOffsets(tps, Duration.ofMillis(timeout));
                for (TopicPartition tp : tps) {
                    OffsetAndTimestamp o = found.get(tp);
                    c.seek(tp, o == null ? ends.get(tp) : o.offset());
                }
            } else {
                throw new Usage("--from beginning|end|offset:N|timestamp:T, got " + from);
            }
            Map<Integer, Long> positions = new HashMap<>();
            for (TopicPartition tp : tps) positions.put(tp.partition(), c.position(tp, Duration.ofMillis(timeout)));
            OUT.println(new Json().put("positions", intMap(positions)));

            Map<Integer, Long> ends = new HashMap<>();
            for (Map.Entry<TopicPartition, Long> e : c.endOffsets(tps, Duration.ofMillis(timeout)).entrySet()) {
                ends.put(e.getKey().partition(), e.getValue());
            }
            long count = 0;
            while (count < max && System.currentTimeMillis() < deadline) {
                if (untilEnd) {
                    boolean atEnd = true;
                    for (TopicPartition tp : tps) {
                        if (c.position(tp) < ends.get(tp.partition())) atEnd = false;
                    }
                    if (atEnd) break;
                }
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    if (count >= max) break;
                    List<String> hs = new ArrayList<>();
                    for (Header h : r.headers()) hs.add("[" + q(h.key()) + "," + b64(h.value()) + "]");
                    OUT.println(new Json().put("partition", r.partition()).put("offset", r.offset())
                            .put("timestamp", r.timestamp()).str("timestamp_type", r.timestampType().name)
                            .put("key", b64(r.key())).put("value", b64(r.value())).put("headers", jsonList(hs))
                            .put("leader_epoch", r.leaderEpoch().orElse(null)));
                    count++;
                }
            }
            OUT.println(new Json().put("done", true).put("count", count).put("end_offsets", intMap(ends)));
        }
        return 0;
    }

    static int offsets(Args a) throws Exception {
        String topic = a.need("topic");
        TopicPartition tp = new TopicPartition(topic, Integer.parseInt(a.need("partition")));
        String spec = a.need("spec");
        Duration t = Duration.ofMillis(Long.parseLong(a.get("timeout-ms", "30000")));
        try (KafkaConsumer<byte[], byte[]> c = consumer(a)) {
            Json j = new Json();
            if (spec.equals("earliest")) {
                j.put("offset", c.beginningOffsets(List.of(tp), t).get(tp));
            } else if (spec.equals("latest")) {
                j.put("offset", c.endOffsets(List.of(tp), t).get(tp));
            } else if (spec.startsWith("timestamp:")) {
                OffsetAndTimestamp o = c.offsetsForTimes(Map.of(tp, Long.parseLong(spec.substring(10))), t).get(tp);
                j.put("offset", o == null ? null : o.offset()).put("timestamp", o == null ? null : o.timestamp());
            } else {
                throw new Usage("--spec earliest|latest|timestamp:T");
            }
            OUT.println(j);
        }
        return 0;
    }

    // ---------------------------------------------------------------- admin

    static ConfigResource resource(Args a) {
        String type = a.get("type", "topic");
        ConfigResource.Type t = type.equals("broker") ? ConfigResource.Type.BROKER : ConfigResource.Type.TOPIC;
        return new ConfigResource(t, a.need("name"));
    }

    static String node(Node n) {
        if (n == null) return "null";
        return new Json().put("id", n.id()).str("host", n.host()).put("port", n.port()).str("rack", n.rack()).toString();
    }

    static int admin(Args a) throws Exception {
        if (a.positional.isEmpty()) throw new Usage("admin needs an operation");
        String op = a.positional.get(0);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, a.need("bootstrap"));
        int timeout = Integer.parseInt(a.get("timeout-ms", "30000"));
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(timeout));
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(Math.min(timeout, 15000)));
        try (Admin admin = Admin.create(p)) {
            try {
                OUT.println(adminOp(admin, op, a));
                return 0;
            } catch (ExecutionException e) {
                OUT.println(errorJson(e));
                return 3;
            }
        }
    }

    static Json adminOp(Admin admin, String op, Args a) throws Exception {
        switch (op) {
            case "create-topic": {
                String name = a.need("name");
                Optional<Integer> parts = Optional.ofNullable(a.get("partitions", null)).map(Integer::valueOf);
                Optional<Short> rf = Optional.ofNullable(a.get("replication-factor", null)).map(Short::valueOf);
                NewTopic nt = new NewTopic(name, parts, rf).configs(a.pairs("config"));
                CreateTopicsOptions opts = new CreateTopicsOptions()
                        .validateOnly(Boolean.parseBoolean(a.get("validate-only", "false")));
                CreateTopicsResult r = admin.createTopics(List.of(nt), opts);
                r.all().get();
                Json j = new Json().put("ok", true);
                try {
                    j.put("partitions", r.numPartitions(name).get()).put("replication_factor", r.replicationFactor(name).get());
                    j.str("topic_id", String.valueOf(r.topicId(name).get()));
                } catch (ExecutionException e) {
                    j.put("details_error", errorJson(e));  // old CreateTopics versions carry no details
                }
                return j;
            }
            case "delete-topic":
                admin.deleteTopics(List.of(a.need("name"))).all().get();
                return new Json().put("ok", true);
            case "list-topics": {
                List<String> names = new ArrayList<>();
                for (String n : new java.util.TreeSet<>(admin.listTopics().names().get())) names.add(q(n));
                return new Json().put("topics", jsonList(names));
            }
            case "describe-topic": {
                String name = a.need("name");
                TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
                List<String> parts = new ArrayList<>();
                for (TopicPartitionInfo pi : d.partitions()) {
                    List<String> reps = new ArrayList<>();
                    for (Node n : pi.replicas()) reps.add(String.valueOf(n.id()));
                    List<String> isr = new ArrayList<>();
                    for (Node n : pi.isr()) isr.add(String.valueOf(n.id()));
                    parts.add(new Json().put("partition", pi.partition())
                            .put("leader", pi.leader() == null ? null : pi.leader().id())
                            .put("replicas", jsonList(reps)).put("isr", jsonList(isr)).toString());
                }
                return new Json().str("name", d.name()).str("topic_id", String.valueOf(d.topicId()))
                        .put("internal", d.isInternal()).put("partitions", jsonList(parts));
            }
            case "describe-configs": {
                ConfigResource res = resource(a);
                Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
                Json configs = new Json();
                List<ConfigEntry> entries = new ArrayList<>(cfg.entries());
                entries.sort((x, y) -> x.name().compareTo(y.name()));
                for (ConfigEntry e : entries) {
                    configs.put(e.name(), new Json().str("value", e.value()).str("source", e.source().name())
                            .put("is_default", e.isDefault()).put("read_only", e.isReadOnly())
                            .put("sensitive", e.isSensitive()));
                }
                return new Json().put("configs", configs);
            }
            case "alter-configs": {
                ConfigResource res = resource(a);
                List<AlterConfigOp> ops = new ArrayList<>();
                for (Map.Entry<String, String> e : a.pairs("set").entrySet())
                    ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET));
                for (String k : a.all("delete"))
                    ops.add(new AlterConfigOp(new ConfigEntry(k, null), AlterConfigOp.OpType.DELETE));
                for (Map.Entry<String, String> e : a.pairs("append").entrySet())
                    ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.APPEND));
                for (Map.Entry<String, String> e : a.pairs("subtract").entrySet())
                    ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SUBTRACT));
                AlterConfigsOptions opts = new AlterConfigsOptions()
                        .validateOnly(Boolean.parseBoolean(a.get("validate-only", "false")));
                admin.incrementalAlterConfigs(Map.of(res, ops), opts).all().get();
                return new Json().put("ok", true);
            }
            case "create-partitions": {
                CreatePartitionsOptions opts = new CreatePartitionsOptions()
                        .validateOnly(Boolean.parseBoolean(a.get("validate-only", "false")));
                admin.createPartitions(Map.of(a.need("name"), NewPartitions.increaseTo(Integer.parseInt(a.need("count")))),
                        opts).all().get();
                return new Json().put("ok", true);
            }
            case "describe-cluster": {
                DescribeClusterResult r = admin.describeCluster();
                List<String> nodes = new ArrayList<>();
                List<Node> sorted = new ArrayList<>(r.nodes().get());
                sorted.sort((x, y) -> Integer.compare(x.id(), y.id()));
                for (Node n : sorted) nodes.add(node(n));
                return new Json().str("cluster_id", r.clusterId().get()).put("controller", node(r.controller().get()))
                        .put("nodes", jsonList(nodes));
            }
            case "describe-quorum": {
                QuorumInfo qi = admin.describeMetadataQuorum().quorumInfo().get();
                List<String> voters = new ArrayList<>();
                for (QuorumInfo.ReplicaState r : qi.voters())
                    voters.add(new Json().put("id", r.replicaId()).put("log_end_offset", r.logEndOffset()).toString());
                List<String> observers = new ArrayList<>();
                for (QuorumInfo.ReplicaState r : qi.observers())
                    observers.add(new Json().put("id", r.replicaId()).put("log_end_offset", r.logEndOffset()).toString());
                return new Json().put("leader_id", qi.leaderId()).put("leader_epoch", qi.leaderEpoch())
                        .put("high_watermark", qi.highWatermark()).put("voters", jsonList(voters))
                        .put("observers", jsonList(observers));
            }
            case "list-offsets": {
                TopicPartition tp = new TopicPartition(a.need("name"), Integer.parseInt(a.need("partition")));
                String spec = a.need("spec");
                OffsetSpec os;
                if (spec.equals("earliest")) os = OffsetSpec.earliest();
                else if (spec.equals("latest")) os = OffsetSpec.latest();
                else if (spec.equals("max-timestamp")) os = OffsetSpec.maxTimestamp();
                else if (spec.startsWith("timestamp:")) os = OffsetSpec.forTimestamp(Long.parseLong(spec.substring(10)));
                else throw new Usage("--spec earliest|latest|max-timestamp|timestamp:T");
                ListOffsetsResult.ListOffsetsResultInfo info = admin.listOffsets(Map.of(tp, os)).partitionResult(tp).get();
                return new Json().put("offset", info.offset()).put("timestamp", info.timestamp())
                        .put("leader_epoch", info.leaderEpoch().orElse(null));
            }
            default:
                throw new Usage("unknown admin operation " + op);
        }
    }

    // ---------------------------------------------------------------- main

    public static void main(String[] argv) {
        int code;
        try {
            if (argv.length == 0) throw new Usage("command: produce|consume|offsets|admin");
            Args a = new Args(argv, 1);
            switch (argv[0]) {
                case "produce": code = produce(a); break;
                case "consume": code = consume(a); break;
                case "offsets": code = offsets(a); break;
                case "admin": code = admin(a); break;
                default: throw new Usage("unknown command " + argv[0]);
            }
        } catch (Usage u) {
            System.err.println("usage error: " + u.getMessage());
            code = 2;
        } catch (Throwable t) {
            t.printStackTrace();
            code = 1;
        }
        System.out.flush();
        // Don't wait for client threads that may linger after close.
        Runtime.getRuntime().halt(code);
    }
}
