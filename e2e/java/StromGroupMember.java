// One Java consumer-group member (kafka-clients 3.9.1) driven line by line over stdin,
// for the consumer-group e2e tests (e2e/test_groups_java.py).
//
//   StromGroupMember --bootstrap B --group G --topic T [--consumer-config k=v]...
//
// Subscribes to T in group G (group.protocol classic by default; pass
// --consumer-config group.protocol=consumer for KIP-848), prints {"ready":true,...}, then
// answers each command line with exactly one JSON line on stdout (diagnostics and the
// client's log go to stderr):
//   poll MS                  one poll(MS): {"records":[{partition,offset,key,value}],
//                            "assignment":[p..]} (key/value base64, null kept)
//   assignment               {"assignment":[p..]}
//   member-id                {"member_id":..,"generation":..} (groupMetadata())
//   position P               {"position":N}
//   commit-sync              commitSync() of the consumed positions: {"ok":true}
//   commit-async             commitAsync(callback): {"ok":true}; the callback runs in a
//                            later poll/commit/close
//   async-results MS         polls (poll(0), the partitions paused) until every
//                            commit-async so far called back,
//                            at most MS: {"callbacks":[{"offsets":{p:{offset,metadata}},
//                            "error":null|NAME}],"pending":N}
//   commit P=OFFSET:META..   commitSync(map) of explicit offsets with metadata
//                            (META is base64, "-" = none): {"ok":true}
//   committed P..            committed(): {"committed":{p:{offset,metadata}|null}}
//   describe                 Admin.describeConsumerGroups(G): {"state","type",
//                            "coordinator","members":[{member_id,client_id,
//                            group_instance_id,partitions}]}
//   close                    close(): {"closed":true}, then the process exits
// A command that throws answers {"error":"<Errors name>","exception":..,"message":..}.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class StromGroupMember {

    static String partitions(Collection<TopicPartition> tps) {
        Set<Integer> ps = new TreeSet<>();
        for (TopicPartition tp : tps) ps.add(tp.partition());
        return StromE2E.jsonList(ps);
    }

    static String offsetsJson(Map<TopicPartition, OffsetAndMetadata> m) {
        StromE2E.Json j = new StromE2E.Json();
        Map<Integer, OffsetAndMetadata> sorted = new TreeMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : m.entrySet()) sorted.put(e.getKey().partition(), e.getValue());
        for (Map.Entry<Integer, OffsetAndMetadata> e : sorted.entrySet()) {
            OffsetAndMetadata o = e.getValue();
            j.put(String.valueOf(e.getKey()), o == null ? null
                    : new StromE2E.Json().put("offset", o.offset()).str("metadata", o.metadata()).toString());
        }
        return j.toString();
    }

    public static void main(String[] argv) {
        int code = 0;
        try {
            code = run(new StromE2E.Args(argv, 0));
        } catch (StromE2E.Usage u) {
            System.err.println("usage error: " + u.getMessage());
            code = 2;
        } catch (Throwable t) {
            t.printStackTrace();
            code = 1;
        }
        System.out.flush();
        Runtime.getRuntime().halt(code);
    }

    static int run(StromE2E.Args a) throws Exception {
        String bootstrap = a.need("bootstrap");
        String group = a.need("group");
        String topic = a.need("topic");
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.putAll(a.pairs("consumer-config"));

        List<String> callbacks = new ArrayList<>();
        AtomicInteger asyncCalled = new AtomicInteger();
        Admin admin = null;
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p);
        c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override public void onPartitionsRevoked(Collection<TopicPartition> tps) {
                System.err.println("[member] revoked " + partitions(tps));
            }
            @Override public void onPartitionsAssigned(Collection<TopicPartition> tps) {
                System.err.println("[member] assigned " + partitions(tps));
            }
        });
        StromE2E.OUT.println(new StromE2E.Json().put("ready", true).str("group", group).str("topic", topic));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            if (line.isEmpty()) continue;
            String[] w = line.split("\\s+");
            StromE2E.Json out;
            try {
                switch (w[0]) {
                    case "poll": {
                        ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(Long.parseLong(w[1])));
                        List<String> rs = new ArrayList<>();
                        for (ConsumerRecord<byte[], byte[]> r : recs) {
                            rs.add(new StromE2E.Json().put("partition", r.partition()).put("offset", r.offset())
                                    .put("key", StromE2E.b64(r.key())).put("value", StromE2E.b64(r.value())).toString());
                        }
                        out = new StromE2E.Json().put("records", StromE2E.jsonList(rs))
                                .put("assignment", partitions(c.assignment()));
                        break;
                    }
                    case "member-id":
                        out = new StromE2E.Json().str("member_id", c.groupMetadata().memberId())
                                .put("generation", c.groupMetadata().generationId());
                        break;
                    case "assignment":
                        out = new StromE2E.Json().put("assignment", partitions(c.assignment()));
                        break;
                    case "position":
                        out = new StromE2E.Json().put("position",
                                c.position(new TopicPartition(topic, Integer.parseInt(w[1])), Duration.ofSeconds(30)));
                        break;
                    case "commit-sync":
                        c.commitSync(Duration.ofSeconds(30));
                        out = new StromE2E.Json().put("ok", true);
                        break;
                    case "commit-async":
                        asyncCalled.incrementAndGet();
                        c.commitAsync((offsets, e) -> {
                            synchronized (callbacks) {
                                callbacks.add(new StromE2E.Json().put("offsets", offsetsJson(offsets))
                                        .put("error", e == null ? null : StromE2E.errorJson(e)).toString());
                            }
                        });
                        out = new StromE2E.Json().put("ok", true);
                        break;
                    case "async-results": {
                        long deadline = System.currentTimeMillis() + Long.parseLong(w[1]);
                        // poll runs the callbacks; paused partitions hand out no records meanwhile
                        Set<TopicPartition> paused = new HashSet<>(c.assignment());
                        c.pause(paused);
                        try {
                            while (true) {
                                synchronized (callbacks) {
                                    if (callbacks.size() >= asyncCalled.get()) break;
                                }
                                if (System.currentTimeMillis() > deadline) break;
                                if (!c.poll(Duration.ZERO).isEmpty()) throw new IllegalStateException("records from paused partitions");
                                Thread.sleep(20);
                            }
                        } finally {
                            c.resume(paused);
                        }
                        synchronized (callbacks) {
                            out = new StromE2E.Json().put("callbacks", StromE2E.jsonList(callbacks))
                                    .put("pending", asyncCalled.get() - callbacks.size());
                        }
                        break;
                    }
                    case "commit": {
                        Map<TopicPartition, OffsetAndMetadata> m = new java.util.HashMap<>();
                        for (int i = 1; i < w.length; i++) {
                            String[] pv = w[i].split("=", 2);
                            String[] om = pv[1].split(":", 2);
                            String meta = om.length < 2 || om[1].equals("-") ? null
                                    : new String(Base64.getDecoder().decode(om[1]), StandardCharsets.UTF_8);
                            m.put(new TopicPartition(topic, Integer.parseInt(pv[0])),
                                    meta == null ? new OffsetAndMetadata(Long.parseLong(om[0]))
                                            : new OffsetAndMetadata(Long.parseLong(om[0]), meta));
                        }
                        c.commitSync(m, Duration.ofSeconds(30));
                        out = new StromE2E.Json().put("ok", true);
                        break;
                    }
                    case "committed": {
                        Set<TopicPartition> tps = new HashSet<>();
                        for (int i = 1; i < w.length; i++) tps.add(new TopicPartition(topic, Integer.parseInt(w[i])));
                        out = new StromE2E.Json().put("committed", offsetsJson(c.committed(tps, Duration.ofSeconds(30))));
                        break;
                    }
                    case "describe": {
                        if (admin == null) {
                            Properties ap = new Properties();
                            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                            ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
                            admin = Admin.create(ap);
                        }
                        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                        List<String> ms = new ArrayList<>();
                        for (MemberDescription m : d.members()) {
                            ms.add(new StromE2E.Json().str("member_id", m.consumerId()).str("client_id", m.clientId())
                                    .str("group_instance_id", m.groupInstanceId().orElse(null))
                                    .put("partitions", partitions(m.assignment().topicPartitions())).toString());
                        }
                        out = new StromE2E.Json().str("state", d.state().toString()).str("type", d.type().toString())
                                .put("coordinator", d.coordinator() == null ? null : d.coordinator().id())
                                .str("partition_assignor", d.partitionAssignor())
                                .put("members", StromE2E.jsonList(ms));
                        break;
                    }
                    case "close":
                        c.close(Duration.ofSeconds(30));
                        if (admin != null) admin.close(Duration.ofSeconds(5));
                        StromE2E.OUT.println(new StromE2E.Json().put("closed", true));
                        return 0;
                    default:
                        throw new StromE2E.Usage("unknown command " + w[0]);
                }
            } catch (StromE2E.Usage u) {
                throw u;
            } catch (Exception e) {
                e.printStackTrace();
                out = StromE2E.errorJson(e);
            }
            StromE2E.OUT.println(out);
        }
        c.close(Duration.ofSeconds(30));
        return 0;
    }
}
