// Prints the bytes Kafka's own Java message classes (kafka-clients 4.4.0) write for the
// ListTransactions and DescribeTransactions requests and answers of
// tests/unit/engine/test_kip664_protocol.py, one hex line each.
//
//   javac -cp .local/kafka/libs/kafka-clients-4.4.0.jar -d /tmp/vectors Kip664Vectors.java
//   java -cp /tmp/vectors:.local/kafka/libs/kafka-clients-4.4.0.jar Kip664Vectors
import java.nio.ByteBuffer;
import java.util.List;

import org.apache.kafka.common.message.DescribeTransactionsRequestData;
import org.apache.kafka.common.message.DescribeTransactionsResponseData;
import org.apache.kafka.common.message.ListTransactionsRequestData;
import org.apache.kafka.common.message.ListTransactionsResponseData;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.MessageUtil;

public class Kip664Vectors {
    static void print(String name, Message message, int version) {
        ByteBuffer buffer = MessageUtil.toByteBufferAccessor(message, (short) version).buffer();
        buffer.rewind();
        StringBuilder hex = new StringBuilder();
        while (buffer.hasRemaining()) hex.append(String.format("%02x", buffer.get()));
        System.out.println(name + " " + hex);
    }

    public static void main(String[] args) {
        print("list_transactions_request_v0", new ListTransactionsRequestData()
            .setStateFilters(List.of("Ongoing"))
            .setProducerIdFilters(List.of(4242L, 7L)), 0);
        print("list_transactions_request_v0_all", new ListTransactionsRequestData(), 0);
        print("list_transactions_response_v0", new ListTransactionsResponseData()
            .setThrottleTimeMs(3)
            .setErrorCode((short) 0)
            .setUnknownStateFilters(List.of("Sleeping"))
            .setTransactionStates(List.of(
                new ListTransactionsResponseData.TransactionState()
                    .setTransactionalId("app-views-0123456789ab")
                    .setProducerId(4242L)
                    .setTransactionState("Ongoing"))), 0);
        print("describe_transactions_request_v0", new DescribeTransactionsRequestData()
            .setTransactionalIds(List.of("app-views-0123456789ab", "é")), 0);
        DescribeTransactionsResponseData.TopicDataCollection topics =
            new DescribeTransactionsResponseData.TopicDataCollection();
        topics.add(new DescribeTransactionsResponseData.TopicData()
            .setTopic("app-views-changelog").setPartitions(List.of(3, 11)));
        topics.add(new DescribeTransactionsResponseData.TopicData()
            .setTopic("__consumer_offsets").setPartitions(List.of(27)));
        print("describe_transactions_response_v0", new DescribeTransactionsResponseData()
            .setThrottleTimeMs(0)
            .setTransactionStates(List.of(
                new DescribeTransactionsResponseData.TransactionState()
                    .setErrorCode((short) 0)
                    .setTransactionalId("app-views-0123456789ab")
                    .setTransactionState("Ongoing")
                    .setTransactionTimeoutMs(10000)
                    .setTransactionStartTimeMs(1765000000123L)
                    .setProducerId(4242L)
                    .setProducerEpoch((short) 5)
                    .setTopics(topics),
                new DescribeTransactionsResponseData.TransactionState()
                    .setErrorCode((short) 105)
                    .setTransactionalId("gone")
                    .setTransactionState("")
                    .setTransactionTimeoutMs(0)
                    .setTransactionStartTimeMs(-1L)
                    .setProducerId(-1L)
                    .setProducerEpoch((short) -1))), 0);
    }
}
