"""A peer written with the CloudEvents Python SDK (`cloudevents` on PyPI, its Kafka protocol
binding, binary content mode) over aiokafka, for the CloudEvents interoperability tests
(docs/events.md, "CloudEvents").

read BOOTSTRAP TOPIC COUNT
    Reads COUNT messages from the earliest offset in a fresh group, turns each into a
    CloudEvent with the SDK's `from_binary_event`, and prints one JSON object a line: the
    event's id, type, source, subject, time, dataschema, datacontenttype, specversion, its
    extensions (partitionkey, traceparent), and data.
produce BOOTSTRAP TOPIC USER_ID TASK_ID ID DATA_JSON
    Builds a CloudEvent with the SDK (type com.taskstream.task.created, source
    /peer/cloudevents-sdk, subject TASK_ID, id ID, partitionkey USER_ID, data DATA_JSON),
    converts it with `to_binary_event` and sends it with the message's key and headers.
"""
import asyncio
import json
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event, to_binary_event
from cloudevents.core.v1.event import CloudEvent


async def read(bootstrap: str, topic: str, count: int) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"cloudevents-peer-{uuid.uuid4()}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=30000)
            if not batch:
                raise SystemExit(f"timed out after {seen} of {count} messages")
            for records in batch.values():
                for r in records:
                    # Kafka allows a header name twice; the binding takes one value per name.
                    message = KafkaMessage(headers={k: v for k, v in r.headers}, key=r.key, value=r.value)
                    event = from_binary_event(message)
                    attrs = event.get_attributes()
                    print(json.dumps({
                        "id": event.get_id(),
                        "type": event.get_type(),
                        "source": event.get_source(),
                        "subject": event.get_subject(),
                        "time": attrs["time"].isoformat() if attrs.get("time") else None,
                        "dataschema": event.get_dataschema(),
                        "datacontenttype": event.get_datacontenttype(),
                        "specversion": event.get_specversion(),
                        "partitionkey": event.get_extension("partitionkey"),
                        "traceparent": event.get_extension("traceparent"),
                        "data": event.get_data(),
                    }), flush=True)
                    seen += 1
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, user_id: str, task_id: str, event_id: str, data: str) -> None:
    event = CloudEvent(
        attributes={
            "id": event_id,
            "type": "com.taskstream.task.created",
            "source": "/peer/cloudevents-sdk",
            "subject": task_id,
            "datacontenttype": "application/json",
            "partitionkey": user_id,
        },
        data=json.loads(data),
    )
    message = to_binary_event(event)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        key = message.key.encode("utf-8") if isinstance(message.key, str) else message.key
        await producer.send_and_wait(topic, value=message.value, key=key, headers=list(message.headers.items()))
    finally:
        await producer.stop()


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "read":
        asyncio.run(read(args[1], args[2], int(args[3])))
    elif len(args) == 7 and args[0] == "produce":
        asyncio.run(produce(*args[1:]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
