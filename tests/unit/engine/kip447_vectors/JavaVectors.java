// Prints the bytes Kafka's own Java message classes (kafka-clients 4.4.0) write for the
// KIP-447 requests and answers of tests/unit/engine/test_kip447_protocol.py, one hex line each.
//
//   javac -cp .local/kafka/libs/kafka-clients-4.4.0.jar -d /tmp/vectors JavaVectors.java
//   java -cp /tmp/vectors:.local/kafka/libs/kafka-clients-4.4.0.jar JavaVectors
import java.nio.ByteBuffer;
import java.util.List;

import org.apache.kafka.common.message.OffsetFetchRequestData;
import org.apache.kafka.common.message.OffsetFetchResponseData;
import org.apache.kafka.common.message.TxnOffsetCommitRequestData;
import org.apache.kafka.common.message.TxnOffsetCommitResponseData;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.MessageUtil;
import org.apache.kafka.common.protocol.types.RawTaggedField;

public class JavaVectors {
    static void print(String name, Message message, int version) {
        ByteBuffer buffer = MessageUtil.toByteBufferAccessor(message, (short) version).buffer();
        buffer.rewind();
        StringBuilder hex = new StringBuilder();
        while (buffer.hasRemaining()) hex.append(String.format("%02x", buffer.get()));
        System.out.println(name + " " + hex);
    }

    public static void main(String[] args) {
        TxnOffsetCommitRequestData commit = new TxnOffsetCommitRequestData()
            .setTransactionalId("app-views-w1")
            .setGroupId("app")
            .setProducerId(4242L)
            .setProducerEpoch((short) 7)
            .setGenerationIdOrMemberEpoch(12)
            .setMemberId("faust-1-5f0c")
            .setGroupInstanceId(null)
            .setTopics(List.of(
                new TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic()
                    .setName("property.views")
                    .setPartitions(List.of(
                        new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition()
                            .setPartitionIndex(0).setCommittedOffset(1000L)
                            .setCommittedLeaderEpoch(-1).setCommittedMetadata(""),
                        new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition()
                            .setPartitionIndex(5).setCommittedOffset(1L << 40)
                            .setCommittedLeaderEpoch(-1).setCommittedMetadata(null))),
                new TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic()
                    .setName("é.events")
                    .setPartitions(List.of(
                        new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition()
                            .setPartitionIndex(2).setCommittedOffset(0L)
                            .setCommittedLeaderEpoch(-1).setCommittedMetadata("m")))));
        print("txn_offset_commit_request_v3", commit, 3);
        print("txn_offset_commit_request_v3_static", commit.duplicate()
            .setGroupInstanceId("worker-1").setTopics(List.of()), 3);

        TxnOffsetCommitResponseData answer = new TxnOffsetCommitResponseData()
            .setThrottleTimeMs(5)
            .setTopics(List.of(
                new TxnOffsetCommitResponseData.TxnOffsetCommitResponseTopic()
                    .setName("property.views")
                    .setPartitions(List.of(
                        new TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition()
                            .setPartitionIndex(0).setErrorCode((short) 0),
                        new TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition()
                            .setPartitionIndex(5).setErrorCode((short) 22)))));
        print("txn_offset_commit_response_v3", answer, 3);
        TxnOffsetCommitResponseData tagged = answer.duplicate();
        tagged.unknownTaggedFields().add(new RawTaggedField(7, new byte[] {1, 2, 3}));
        print("txn_offset_commit_response_v3_tagged", tagged, 3);

        OffsetFetchRequestData fetch = new OffsetFetchRequestData()
            .setGroupId("app")
            .setTopics(List.of(
                new OffsetFetchRequestData.OffsetFetchRequestTopic()
                    .setName("property.views").setPartitionIndexes(List.of(0, 1, 11))))
            .setRequireStable(true);
        print("offset_fetch_request_v7", fetch, 7);
        print("offset_fetch_request_v7_all", fetch.duplicate().setTopics(null).setRequireStable(false), 7);

        OffsetFetchResponseData fetched = new OffsetFetchResponseData()
            .setThrottleTimeMs(0)
            .setErrorCode((short) 0)
            .setTopics(List.of(
                new OffsetFetchResponseData.OffsetFetchResponseTopic()
                    .setName("property.views")
                    .setPartitions(List.of(
                        new OffsetFetchResponseData.OffsetFetchResponsePartition()
                            .setPartitionIndex(0).setCommittedOffset(1000L)
                            .setCommittedLeaderEpoch(3).setMetadata("").setErrorCode((short) 0),
                        new OffsetFetchResponseData.OffsetFetchResponsePartition()
                            .setPartitionIndex(1).setCommittedOffset(-1L)
                            .setCommittedLeaderEpoch(-1).setMetadata(null).setErrorCode((short) 88)))));
        print("offset_fetch_response_v7", fetched, 7);
    }
}
