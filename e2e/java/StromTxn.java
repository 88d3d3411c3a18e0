// Transactions with the Java Kafka client (kafka-clients 3.9.1), for the e2e tests.
//
// Prints JSON objects, one per line, on stdout; exits 0 when the scenario ran, 1 on an
// unexpected exception (its stack trace on stderr).
//
//   produce --bootstrap B --topic T --tid X --commit N --abort M
//       One transaction of N records "java-commit-i" committed, one of M records
//       "java-abort-i" written (flushed) and aborted, one record "java-last" committed.
//   fence   --bootstrap B --topic T --tid X
//       Producer 1 opens a transaction and writes "zombie"; producer 2 with the same
//       transactional id initialises (fencing producer 1), writes "new" and commits;
//       producer 1 then writes and commits: prints {"fenced": "<exception class>"}.
//   ctp     --bootstrap B --src S --dst D --group G --tid X --expect N
//       Consume-transform-produce: a read_committed consumer in group G, each batch
//       written to D as "java-" + value in a transaction that also commits the batch's
//       offsets with the consumer's group metadata (KIP-447), until N records are done.

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class StromTxn {

    static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

    static Map<String, String> args(String[] argv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 1; i + 1 < argv.length; i += 2) m.put(argv[i].substring(2), argv[i + 1]);
        return m;
    }

    static KafkaProducer<byte[], byte[]> producer(String bootstrap, String tid) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, tid);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        return new KafkaProducer<>(p);
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void produce(Map<String, String> a) {
        String topic = a.get("topic");
        int commit = Integer.parseInt(a.get("commit"));
        int abort = Integer.parseInt(a.get("abort"));
        try (KafkaProducer<byte[], byte[]> p = producer(a.get("bootstrap"), a.get("tid"))) {
            p.initTransactions();
            p.beginTransaction();
            for (int i = 0; i < commit; i++) p.send(new ProducerRecord<>(topic, b("java-commit-" + i)));
            p.commitTransaction();
            p.beginTransaction();
            for (int i = 0; i < abort; i++) p.send(new ProducerRecord<>(topic, b("java-abort-" + i)));
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, b("java-last")));
            p.commitTransaction();
        }
        OUT.println("{\"done\":true}");
    }

    static void fence(Map<String, String> a) throws Exception {
        String topic = a.get("topic");
        KafkaProducer<byte[], byte[]> p1 = producer(a.get("bootstrap"), a.get("tid"));
        p1.initTransactions();
        p1.beginTransaction();
        p1.send(new ProducerRecord<>(topic, b("zombie"))).get();
        try (KafkaProducer<byte[], byte[]> p2 = producer(a.get("bootstrap"), a.get("tid"))) {
            p2.initTransactions();
            p2.beginTransaction();
            p2.send(new ProducerRecord<>(topic, b("new")));
            p2.commitTransaction();
        }
        String fenced = "none";
        try {
            p1.send(new ProducerRecord<>(topic, b("zombie-2")));
            p1.commitTransaction();
        } catch (Exception e) {
            Throwable t = e;
            while (t.getCause() != null && !(t instanceof org.apache.kafka.common.errors.ApiException)) t = t.getCause();
            fenced = t.getClass().getSimpleName();
        } finally {
            p1.close(Duration.ofSeconds(5));
        }
        OUT.println("{\"fenced\":\"" + fenced + "\"}");
    }

    static void ctp(Map<String, String> a) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
        c.put(ConsumerConfig.GROUP_ID_CONFIG, a.get("group"));
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        int expect = Integer.parseInt(a.get("expect"));
        String dst = a.get("dst");
        int done = 0;
        int txns = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c);
             KafkaProducer<byte[], byte[]> p = producer(a.get("bootstrap"), a.get("tid"))) {
            p.initTransactions();
            consumer.subscribe(Collections.singletonList(a.get("src")));
            long deadline = System.currentTimeMillis() + 90_000;
            while (done < expect && System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(500));
                if (recs.isEmpty()) continue;
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    byte[] v = r.value();
                    byte[] out = new byte[v.length + 5];
                    System.arraycopy(b("java-"), 0, out, 0, 5);
                    System.arraycopy(v, 0, out, 5, v.length);
                    p.send(new ProducerRecord<>(dst, r.partition(), null, out));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                p.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                p.commitTransaction();
                done += recs.count();
                txns++;
            }
        }
        OUT.println("{\"done\":true,\"processed\":" + done + ",\"transactions\":" + txns + "}");
    }

    public static void main(String[] argv) {
        int code = 0;
        try {
            Map<String, String> a = args(argv);
            switch (argv[0]) {
                case "produce": produce(a); break;
                case "fence": fence(a); break;
                case "ctp": ctp(a); break;
                default: throw new IllegalArgumentException("unknown command " + argv[0]);
            }
        } catch (Throwable t) {
            t.printStackTrace();
            code = 1;
        }
        System.out.flush();
        Runtime.getRuntime().halt(code);
    }
}
