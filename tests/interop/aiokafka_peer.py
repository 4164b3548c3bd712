"""A peer written with the seed's own library (aiokafka), for wire-compatibility tests.

produce-seed BOOTSTRAP TOPIC COUNT USER_ID
    Publishes COUNT task events exactly as the seed's route handler does (no event_id,
    no seq, no action; json.dumps(default=str); key = user id).
consume BOOTSTRAP TOPIC COUNT
    Reads COUNT messages from the earliest offset in a fresh group and prints one JSON
    object a line: key, value (parsed), headers, partition, offset.
"""
import asyncio
import json
import sys
import uuid
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def produce_seed(bootstrap: str, topic: str, count: int, user_id: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        value_serializer=lambda v: json.dumps(v, default=str).encode("utf-8"),
        key_serializer=lambda k: k.encode("utf-8") if k else None,
    )
    await producer.start()
    try:
        for i in range(count):
            task_id = uuid.uuid4()
            await producer.send_and_wait(
                topic,
                value={
                    "type": "task_created",
                    "task_id": str(task_id),
                    "task_data": {"id": task_id, "title": f"seed task {i}", "status": "todo",
                                  "created_at": datetime.now(timezone.utc)},
                    "user_id": user_id,
                    "timestamp": datetime.now(timezone.utc).isoformat(),
                },
                key=user_id,
            )
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"aiokafka-peer-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        value_deserializer=lambda v: json.loads(v.decode("utf-8")),
    )
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=30000)
            if not batch:
                raise SystemExit(f"timed out after {seen} of {count} messages")
            for messages in batch.values():
                for m in messages:
                    print(json.dumps({
                        "key": m.key.decode("utf-8") if m.key else None,
                        "value": m.value,
                        "headers": {k: v.decode("utf-8") for k, v in (m.headers or [])},
                        "partition": m.partition,
                        "offset": m.offset,
                    }), flush=True)
                    seen += 1
    finally:
        await consumer.stop()


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "produce-seed":
        asyncio.run(produce_seed(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
    elif cmd == "consume":
        asyncio.run(consume(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
